//! The `legacy-sha1` build: SHA-1 algorithms for old appliances that speak
//! nothing newer (ssh-rsa host keys, diffie-hellman-group*-sha1, hmac-sha1).
//!
//! libssh2 compiles these out unless built with LIBSSH2_KEX_SHA1_ENABLE,
//! LIBSSH2_RSA_SHA1_ENABLE and LIBSSH2_HMAC_SHA1_ENABLE, which only the
//! C compiler's flags can set (`make static LEGACY_SHA1=1` does). The cargo
//! feature alone cannot reach libssh2's build, so each session checks that
//! they are really there instead of failing later with an opaque key
//! exchange error.

use super::error::{from_ssh2, ErrorKind, SshError};
use ssh2::{MethodType, Session};

/// The SHA-1 algorithms a legacy build must offer, per method type.
const LEGACY: [(MethodType, &str, &[&str]); 4] = [
    (
        MethodType::Kex,
        "key exchange",
        &[
            "diffie-hellman-group14-sha1",
            "diffie-hellman-group-exchange-sha1",
            "diffie-hellman-group1-sha1",
        ],
    ),
    (MethodType::HostKey, "host key", &["ssh-rsa"]),
    (MethodType::MacCs, "MAC", &["hmac-sha1", "hmac-sha1-96"]),
    (MethodType::MacSc, "MAC", &["hmac-sha1", "hmac-sha1-96"]),
];

/// Offers the SHA-1 algorithms after every stronger one, so a server that
/// speaks both still negotiates a modern algorithm.
pub fn allow_sha1(session: &Session, who: &str) -> Result<(), SshError> {
    for (method, what, legacy) in LEGACY {
        let supported = session
            .supported_algs(method)
            .map_err(|e| from_ssh2(&format!("{who}: listing libssh2's {what} algorithms"), &e))?;
        if let Some(missing) = legacy.iter().find(|alg| !supported.contains(alg)) {
            return Err(SshError::new(
                ErrorKind::Config,
                format!(
                    "{who}: this scout-mcp was built with the legacy-sha1 feature, but its \
                     libssh2 lacks the {what} algorithm {missing}: build it with `make static \
                     LEGACY_SHA1=1`, which compiles libssh2's SHA-1 algorithms in"
                ),
            ));
        }
        let prefs = sha1_last(&supported, legacy);
        session.method_pref(method, &prefs).map_err(|e| {
            from_ssh2(
                &format!("{who}: setting the {what} preferences to {prefs}"),
                &e,
            )
        })?;
    }
    Ok(())
}

/// `supported` in its own order, the `legacy` algorithms moved to the end.
fn sha1_last(supported: &[&str], legacy: &[&str]) -> String {
    let (old, modern): (Vec<&str>, Vec<&str>) =
        supported.iter().partition(|alg| legacy.contains(alg));
    modern.into_iter().chain(old).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_algorithms_go_last_and_the_rest_keep_their_order() {
        let supported = [
            "hmac-sha1",
            "hmac-sha2-256",
            "hmac-sha1-96",
            "hmac-sha2-512",
        ];
        assert_eq!(
            sha1_last(&supported, &["hmac-sha1", "hmac-sha1-96"]),
            "hmac-sha2-256,hmac-sha2-512,hmac-sha1,hmac-sha1-96"
        );
    }

    #[test]
    fn this_build_compiles_every_legacy_algorithm_in() {
        let session = Session::new().expect("a libssh2 session");
        assert!(allow_sha1(&session, "test").is_ok());
    }
}
