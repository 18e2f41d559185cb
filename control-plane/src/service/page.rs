//! Keyset pagination, the same on both faces: a page size (1 to [`MAX_PAGE_SIZE`],
//! default [`DEFAULT_PAGE_SIZE`]) and an opaque token `<created_at millis>.<id>` naming
//! the last item of the previous page. REST carries the token in `metadata.next`, gRPC in
//! `next_page_token`.

use crate::error::{Error, Result};
use crate::store::PageCursor;

pub const DEFAULT_PAGE_SIZE: i64 = 10;
pub const MAX_PAGE_SIZE: i64 = 100;

/// What a caller asked for: `None` for either means the default (first page, default size).
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub page_size: Option<i64>,
    pub page_token: Option<String>,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The page size in force (what was asked, or the default).
    pub page_size: i64,
    /// The token of the next page; `None` on the last page.
    pub next_token: Option<String>,
}

impl PageRequest {
    /// The checked page size and where the page starts, for ids starting with `id_prefix`.
    pub(crate) fn checked(&self, id_prefix: &str) -> Result<(i64, Option<PageCursor>)> {
        let size = page_size(self.page_size)?;
        let cursor = decode_token(self.page_token.as_deref(), id_prefix)?;
        Ok((size, cursor))
    }
}

/// Makes a page from `items`, fetched with a limit of `page_size + 1` so that a further
/// page shows as one extra item.
pub(crate) fn page_of<T>(
    mut items: Vec<T>,
    page_size: i64,
    cursor: impl Fn(&T) -> (i64, &str),
) -> Page<T> {
    let next_token = if items.len() as i64 > page_size {
        items.truncate(page_size as usize);
        items.last().map(|last| {
            let (at, id) = cursor(last);
            format!("{at}.{id}")
        })
    } else {
        None
    };
    Page {
        items,
        page_size,
        next_token,
    }
}

/// The page size asked for, checked: 1 to [`MAX_PAGE_SIZE`], default [`DEFAULT_PAGE_SIZE`].
fn page_size(asked: Option<i64>) -> Result<i64> {
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
fn decode_token(token: Option<&str>, id_prefix: &str) -> Result<Option<PageCursor>> {
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
                "page_token is not valid; use the metadata.next URL (REST) or the \
                 next_page_token (gRPC) of a previous page"
                    .into(),
            )
        })
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
    fn page_sizes() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(100)).unwrap(), 100);
        assert!(page_size(Some(0)).is_err());
        assert!(page_size(Some(101)).is_err());
    }

    #[test]
    fn pages_name_their_next_token() {
        let p = page_of(vec![1, 2, 3], 2, |_| (5, "x"));
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(p.next_token.as_deref(), Some("5.x"));
        let p = page_of(vec![1], 2, |_| (5, "x"));
        assert!(p.next_token.is_none());
    }
}
