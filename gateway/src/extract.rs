//! Extractors whose failures are problem documents naming the field: JSON bodies (with the
//! exact path of a bad value, via `serde_path_to_error`), query strings and path ids.

use crate::problem::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use kontaktvei_store::{FieldError, Id};
use serde::de::DeserializeOwned;

/// A JSON request body. Unknown fields, wrong types and missing fields come back as 422 with
/// the field's path; a body that is not JSON at all as 400.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                let m = m.trim();
                m == "application/json" || m.ends_with("+json")
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("could not read the request body: {e}")))?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::BadRequest(format!(
                "the body is not valid JSON (line {}, column {})",
                inner.line(),
                inner.column()
            ));
        }
        ApiError::Invalid(vec![field_error(&path, &inner.to_string())])
    })
}

/// Turns serde's message into a field error: a missing field is reported on that field, and the
/// trailing " at line … column …" is dropped.
fn field_error(path: &str, message: &str) -> FieldError {
    let message = message.split(" at line ").next().unwrap_or(message);
    // serde_path_to_error's path ends at the unknown field itself, but only at the parent of a
    // missing one.
    let join = |name: &str| {
        if path == "." || path.is_empty() || path == name || path.ends_with(&format!(".{name}")) {
            if path == "." || path.is_empty() {
                name.to_owned()
            } else {
                path.to_owned()
            }
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.trim_end_matches('`');
        return FieldError::new(join(name), "is required");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        let expected = rest.split_once(", expected ").map(|(_, e)| e).unwrap_or("");
        return FieldError::new(
            join(name),
            format!("is not a known field; expected {expected}"),
        );
    }
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path.to_owned()
    };
    let message = if message.contains("premature end of input")
        || message.contains("input contains invalid characters")
        || message.contains("trailing input")
    {
        "is not a valid date or time; use RFC 3339, e.g. 2026-12-03T10:30:00+01:00 (dates: 2026-12-03)".to_owned()
    } else {
        message.to_owned()
    };
    FieldError::new(field, message)
}

/// A query string; a bad parameter comes back as 422 naming it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                let path = e.path().to_string();
                ApiError::Invalid(vec![field_error(&path, &e.into_inner().to_string())])
            })
    }
}

/// The ids in a route such as `/patients/{id}/contact-points/{contact_point_id}`; an id that is
/// not a UUID cannot name anything, so it answers 404 like an unknown one.
#[derive(Debug)]
pub struct Ids<const N: usize>(pub [Id; N]);

impl<S: Send + Sync, const N: usize> FromRequestParts<S> for Ids<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<Vec<String>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("resource"))?;
        let mut ids = [Id(uuid::Uuid::nil()); N];
        if raw.len() != N {
            return Err(ApiError::NotFound("resource"));
        }
        for (slot, text) in ids.iter_mut().zip(&raw) {
            *slot = text.parse().map_err(|_| ApiError::NotFound("resource"))?;
        }
        Ok(Ids(ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        year: i32,
        when: Option<chrono::DateTime<chrono::Utc>>,
    }

    fn fields(json: &str) -> Vec<FieldError> {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Invalid(f)) => f,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn missing_unknown_and_mistyped_fields_are_named() {
        assert_eq!(fields(r#"{"year":1}"#)[0].field, "name");
        assert_eq!(
            fields(r#"{"name":"a","year":1,"colour":2}"#)[0].field,
            "colour"
        );
        assert_eq!(
            fields(r#"{"name":"a","year":1,"when":null,"x":{"y":1}}"#)[0].field,
            "x"
        );
        assert_eq!(fields(r#"{"name":"a","year":"x"}"#)[0].field, "year");
        let f = fields(r#"{"name":"a","year":1,"when":"tomorrow"}"#);
        assert_eq!(f[0].field, "when");
        assert!(f[0].message.contains("RFC 3339"), "{}", f[0].message);
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
