//! S3 keys made by rookery: an access key of 20 upper-case letters and digits, a secret of 40 letters and
//! digits, as RGW and AWS make them.

use crate::Credentials;

fn random_text(len: usize, alphabet: &[u8]) -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::getrandom(&mut buf)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % alphabet.len();
        for b in buf {
            if (b as usize) < limit && out.len() < len {
                out.push(char::from(alphabet[b as usize % alphabet.len()]));
            }
        }
    }
    Ok(out)
}

pub fn generate() -> Result<Credentials, getrandom::Error> {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const MIXED: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    Ok(Credentials {
        access_key: random_text(20, UPPER)?,
        secret_key: random_text(40, MIXED)?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_look_like_s3_keys() {
        let a = super::generate().unwrap();
        let b = super::generate().unwrap();
        assert_eq!(a.access_key.len(), 20);
        assert_eq!(a.secret_key.len(), 40);
        assert!(a
            .access_key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_ne!(a, b);
    }
}
