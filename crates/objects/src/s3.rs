//! The S3 calls rookery makes as a user: buckets (create, delete) and objects (for the smoke test and the
//! benchmark). Real S3 clients (aws-cli, boto3) are what the tests use against the same gateway.

use crate::{Client, Credentials, ObjectError};

pub struct S3 {
    client: Client,
}

impl S3 {
    pub fn new(host: impl Into<String>, creds: Credentials) -> S3 {
        S3 {
            client: Client::new(host, creds),
        }
    }

    pub fn create_bucket(&self, bucket: &str) -> Result<(), ObjectError> {
        self.client.call(
            &format!("creating bucket {bucket}"),
            "PUT",
            &format!("/{bucket}"),
            &[],
            b"",
        )?;
        Ok(())
    }

    pub fn delete_bucket(&self, bucket: &str) -> Result<(), ObjectError> {
        self.client.call(
            &format!("removing bucket {bucket}"),
            "DELETE",
            &format!("/{bucket}"),
            &[],
            b"",
        )?;
        Ok(())
    }

    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) -> Result<(), ObjectError> {
        self.client.call(
            &format!("writing {bucket}/{key}"),
            "PUT",
            &format!("/{bucket}/{key}"),
            &[],
            data,
        )?;
        Ok(())
    }

    pub fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
        let r = self.client.call(
            &format!("reading {bucket}/{key}"),
            "GET",
            &format!("/{bucket}/{key}"),
            &[],
            b"",
        )?;
        Ok(r.body)
    }

    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.client.call(
            &format!("deleting {bucket}/{key}"),
            "DELETE",
            &format!("/{bucket}/{key}"),
            &[],
            b"",
        )?;
        Ok(())
    }

    /// One page of ListObjectsV2 (up to 1,000 keys): the keys, and the token of the next page when the
    /// listing goes on.
    pub fn list_page(
        &self,
        bucket: &str,
        after: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), ObjectError> {
        let mut query = vec![("list-type", "2")];
        if let Some(token) = after {
            query.push(("continuation-token", token));
        }
        let r = self.client.call(
            &format!("listing {bucket}"),
            "GET",
            &format!("/{bucket}"),
            &query,
            b"",
        )?;
        let text = String::from_utf8_lossy(&r.body);
        Ok(list_fields(&text))
    }

    /// Every key of the bucket, page by page.
    pub fn list(&self, bucket: &str) -> Result<Vec<String>, ObjectError> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self.list_page(bucket, token.as_deref())?;
            keys.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }
}

/// The keys of a ListObjectsV2 answer and its next page's token (only when `IsTruncated` is true).
fn list_fields(xml: &str) -> (Vec<String>, Option<String>) {
    let inner = |rest: &str, name: &str| -> Option<(String, usize)> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        Some((
            unescape(&rest[start..start + len]),
            start + len + close.len(),
        ))
    };
    let mut keys = Vec::new();
    let mut rest = xml;
    while let Some((key, end)) = inner(rest, "Key") {
        keys.push(key);
        rest = &rest[end..];
    }
    let truncated = inner(xml, "IsTruncated").is_some_and(|(t, _)| t == "true");
    let next = inner(xml, "NextContinuationToken")
        .map(|(t, _)| t)
        .filter(|t| truncated && !t.is_empty());
    (keys, next)
}

/// XML's five predefined entities, which a key or token may hold.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages() {
        let page = "<?xml version=\"1.0\"?><ListBucketResult><Name>b</Name><IsTruncated>true</IsTruncated>\
            <Contents><Key>a&amp;b</Key><Size>1</Size></Contents><Contents><Key>c</Key></Contents>\
            <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>";
        assert_eq!(
            list_fields(page),
            (
                vec!["a&b".to_string(), "c".to_string()],
                Some("tok".to_string())
            )
        );
        let last = page.replace("<IsTruncated>true", "<IsTruncated>false");
        assert_eq!(list_fields(&last).1, None);
        assert_eq!(
            list_fields("<ListBucketResult></ListBucketResult>"),
            (vec![], None)
        );
    }
}
