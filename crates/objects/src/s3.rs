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
}
