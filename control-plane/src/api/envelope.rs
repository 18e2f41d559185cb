//! Confluent Cloud's resource envelope, shared by every resource: `metadata` of an object
//! and of a list, the list shape, and keyset pagination as URLs (`metadata.first`,
//! `metadata.next`; the paging itself is [`crate::service::Page`]).

use crate::service::Page;
use crate::util::rfc3339_millis;
use serde::Serialize;
use utoipa::ToSchema;

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

/// Makes a list from a page. `query` holds the list's filters (`a=b&c=d`, already
/// URL-safe), kept in `first` and `next`.
pub fn list_page<I, T>(
    api_version: &'static str,
    kind: &'static str,
    collection: &str,
    query: &str,
    page: Page<I>,
    view: impl Fn(I) -> T,
) -> List<T> {
    let filters = if query.is_empty() {
        String::new()
    } else {
        format!("{query}&")
    };
    let first = format!("{collection}?{filters}page_size={}", page.page_size);
    // A token is `<digits>.<letters, digits and '-'>`: URL-safe.
    let next = page
        .next_token
        .map(|token| format!("{first}&page_token={token}"));
    List {
        api_version,
        kind,
        metadata: ListMeta { first, next },
        data: page.items.into_iter().map(view).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_link_their_next_page() {
        let page = Page {
            items: vec![1, 2],
            page_size: 2,
            next_token: Some("5.x".to_string()),
        };
        let l = list_page("v", "K", "http://h/c", "environment=e", page, |i| i);
        assert_eq!(l.data, vec![1, 2]);
        assert_eq!(l.metadata.first, "http://h/c?environment=e&page_size=2");
        assert_eq!(
            l.metadata.next.as_deref(),
            Some("http://h/c?environment=e&page_size=2&page_token=5.x")
        );
        let page = Page {
            items: vec![1],
            page_size: 2,
            next_token: None,
        };
        let l = list_page("v", "K", "http://h/c", "", page, |i| i);
        assert!(l.metadata.next.is_none());
    }
}
