//! Any bytes as one of the six pickAtime files (the first byte picks which), the other
//! five valid: a consistent import or an input error at `file:line[:column]`.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use roster_fuzz::csv::Folder;

thread_local! {
    static FOLDER: RefCell<Folder> = RefCell::new(Folder::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    FOLDER.with(|folder| folder.borrow_mut().check(usize::from(which), bytes));
});
