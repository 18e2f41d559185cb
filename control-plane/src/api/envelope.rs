//! Confluent Cloud's resource envelope, shared by every resource: `metadata` of an object
//! and of a list, the list shape, and keyset pagination (`page_size`, `page_token`,
//! `metadata.next`).

use crate::error::{Error, Result};
use crate::store::PageCursor;
use crate::util::rfc3339_millis;
use serde::Serialize;
use utoipa::ToSchema;

pub const DEFAULT_PAGE_SIZE: i64 = 10;
pub const MAX_PAGE_SIZE: i64 = 100;
/// CRNs name every resource: `crn://tributary.cloud/organization=.../...`.
pub const CRN_ROOT: &str = "crn://tributary.cloud";

/// `metadata` of a resource.
#[derive(Serialize, ToSchema)]
pub struct ObjectMeta {
    /// The URL of this resource.
    #[serde(rename = "self")]
    self_url: String,
    /// The CRN of this resource, e.g. `crn://tributary.cloud/organization=o-abc123/environment=env-abc123`.
    resource_name: String,
    /// RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    updated_at: String,
}

impl ObjectMeta {
    pub fn new(self_url: String, resource_name: String, created_at: i64, updated_at: i64) -> Self {
        ObjectMeta {
            self_url,
            resource_name,
            created_at: rfc3339_millis(created_at),
            updated_at: rfc3339_millis(updated_at),
        }
    }
}

/// `metadata` of a list.
#[derive(Serialize, ToSchema)]
pub struct ListMeta {
    /// The URL of the first page with the same filters and page size.
    first: String,
    /// The URL of the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// One page of a list.
#[derive(Serialize, ToSchema)]
pub struct List<T> {
    api_version: &'static str,
    kind: &'static str,
    metadata: ListMeta,
    data: Vec<T>,
}

/// A reference to another resource, as Confluent writes `owner`, `resource` and
/// `environment` in a spec.
#[derive(Serialize, ToSchema)]
pub struct ObjectRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
    pub resource_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
}

/// The page size asked for, checked: 1 to [`MAX_PAGE_SIZE`], default [`DEFAULT_PAGE_SIZE`].
pub fn page_size(asked: Option<i64>) -> Result<i64> {
    let size = asked.unwrap_or(DEFAULT_PAGE_SIZE);
    if (1..=MAX_PAGE_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(Error::InvalidArgument(format!(
            "page_size {size} is out of range; use 1 to {MAX_PAGE_SIZE}"
        )))
    }
}

/// Decodes a page token `<created_at millis>.<id>` whose id starts with `id_prefix`.
pub fn decode_token(token: Option<&str>, id_prefix: &str) -> Result<Option<PageCursor>> {
    let Some(token) = token else {
        return Ok(None);
    };
    token
        .split_once('.')
        .and_then(|(at, id)| {
            // Exactly what the OpenAPI document's pattern allows: 1 to 19 digits (no sign).
            let valid_at = (1..=19).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_digit());
            let valid_id = valid_at
                && id.starts_with(id_prefix)
                && id.len() > id_prefix.len()
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            Some(PageCursor {
                created_at: at.parse().ok()?,
                id: id.to_string(),
            })
            .filter(|_| valid_id)
        })
        .map(Some)
        .ok_or_else(|| {
            Error::InvalidArgument(
                "page_token is not valid; use the metadata.next URL of a previous page".into(),
            )
        })
}

/// Makes a list from `items`, fetched with a limit of `page_size + 1` so that a further
/// page shows as one extra item. `query` holds the list's filters (`a=b&c=d`, already
/// URL-safe), kept in `first` and `next`.
#[allow(clippy::too_many_arguments)]
pub fn list_page<I, T>(
    api_version: &'static str,
    kind: &'static str,
    collection: &str,
    query: &str,
    page_size: i64,
    mut items: Vec<I>,
    cursor: impl Fn(&I) -> (i64, &str),
    view: impl Fn(I) -> T,
) -> List<T> {
    let filters = if query.is_empty() {
        String::new()
    } else {
        format!("{query}&")
    };
    let first = format!("{collection}?{filters}page_size={page_size}");
    let next = if items.len() as i64 > page_size {
        items.truncate(page_size as usize);
        items.last().map(|last| {
            let (at, id) = cursor(last);
            format!("{first}&page_token={at}.{id}")
        })
    } else {
        None
    };
    List {
        api_version,
        kind,
        metadata: ListMeta { first, next },
        data: items.into_iter().map(view).collect(),
    }
}

/// Checks an optional free-text description: at most 1,024 characters.
pub fn validate_description(value: Option<&str>) -> Result<String> {
    const MAX: usize = 1024;
    let value = value.unwrap_or("");
    // The limit applies to what was sent, as the OpenAPI document states it.
    if value.chars().count() > MAX {
        return Err(Error::InvalidArgument(format!(
            "description is too long; use at most {MAX} characters"
        )));
    }
    Ok(value.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let c = decode_token(Some("12.sa-abc"), "sa-").unwrap().unwrap();
        assert_eq!((c.created_at, c.id.as_str()), (12, "sa-abc"));
        assert!(decode_token(None, "sa-").unwrap().is_none());
        for bad in [
            "12",
            "x.sa-a",
            "12.env-a",
            "12.sa-a'--",
            "12.",
            "12.sa-",
            "+12.sa-a",
            "-12.sa-a",
            "00000000000000000012.sa-a",
        ] {
            assert!(decode_token(Some(bad), "sa-").is_err(), "{bad}");
        }
        assert!(decode_token(Some("1.ABCDEF"), "").unwrap().is_some());
    }

    #[test]
    fn lists_link_their_next_page() {
        let l = list_page(
            "v",
            "K",
            "http://h/c",
            "environment=e",
            2,
            vec![1, 2, 3],
            |_| (5, "x"),
            |i| i,
        );
        assert_eq!(l.data, vec![1, 2]);
        assert_eq!(l.metadata.first, "http://h/c?environment=e&page_size=2");
        assert_eq!(
            l.metadata.next.as_deref(),
            Some("http://h/c?environment=e&page_size=2&page_token=5.x")
        );
        let l = list_page("v", "K", "http://h/c", "", 2, vec![1], |_| (5, "x"), |i| i);
        assert!(l.metadata.next.is_none());
    }
}
