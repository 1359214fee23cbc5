//! Config mistakes are caught at `open`, before any request, and name the key.

mod common;

use common::{run, Setup};
use roster_core::ErrorKind;

fn config_error(config: &str) -> roster_core::PluginError {
    let outcome = run(config);
    let error = outcome.error().clone();
    assert_eq!(error.kind, ErrorKind::Config, "{error}");
    error
}

#[test]
fn unknown_keys_and_bad_values_name_the_key() {
    let setup = Setup::new();
    let error = config_error(&setup.config("v3.0", "colour = \"red\""));
    assert!(error.message.contains("colour"), "{error}");
    let error = config_error(&setup.config("v4.0", ""));
    assert!(
        error.message.contains("api_version") && error.message.contains("v4.0"),
        "{error}"
    );
    let error = config_error(&setup.config("v3.0", "page_size = 0"));
    assert!(error.message.contains("page_size"), "{error}");
    let error = config_error(&setup.config("v3.0", "include_contacts = \"yes\""));
    assert!(error.message.contains("include_contacts"), "{error}");
    assert!(
        setup.server.requests().is_empty(),
        "nothing is fetched on a bad config"
    );
}

#[test]
fn a_missing_or_empty_token_variable_is_named_but_never_shown() {
    let setup = Setup::new();
    let missing = format!("{}_MISSING", setup.token_env);
    let config = format!(
        "api_version = \"v3.0\"\nbase_url = \"{}\"\ntoken_env = \"{missing}\"\n",
        setup.server.base_url()
    );
    let error = config_error(&config);
    assert!(
        error.message.contains(&missing) && error.message.contains("not set"),
        "{error}"
    );

    let empty = format!("{}_EMPTY", setup.token_env);
    std::env::set_var(&empty, "   ");
    let config = format!(
        "api_version = \"v3.0\"\nbase_url = \"{}\"\ntoken_env = \"{empty}\"\n",
        setup.server.base_url()
    );
    let error = config_error(&config);
    assert!(
        error.message.contains(&empty) && error.message.contains("empty"),
        "{error}"
    );
    assert!(setup.server.requests().is_empty());
}
