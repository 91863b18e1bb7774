//! HTTP details every route shares: `HEAD` answers wherever `GET` does,
//! and every error answer is the JSON error body, also those actix-web
//! makes itself (413 body too large, 405, a malformed request).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next};
use dolly_types::v1::{ErrorBody, ErrorDetail};

/// Every answer says dollyd's version in [`dolly_types::VERSION_HEADER`],
/// so the CLI warns when it is not its own without asking.
pub fn version_header() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add((dolly_types::VERSION_HEADER, env!("CARGO_PKG_VERSION")))
}

/// `HEAD` is served as `GET` without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let head = req.method() == Method::HEAD;
    if head {
        req.head_mut().method = Method::GET;
    }
    let res = next.call(req).await?;
    if head {
        Ok(res.map_body(|_, _| BoxBody::new(())))
    } else {
        Ok(res.map_into_boxed_body())
    }
}

/// Rewrites an error answer that is not JSON into the JSON error body,
/// keeping its status.
pub fn json_errors<B: MessageBody + 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|res: ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let (code, message) = describe(status, res.response().error());
        let body = serde_json::to_vec(&ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message,
            },
        })
        .unwrap_or_default();
        let (req, mut res) = res.into_parts();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let res = res.set_body(BoxBody::new(body));
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(req, res).map_into_right_body(),
        ))
    })
}

fn describe(
    status: actix_web::http::StatusCode,
    error: Option<&actix_web::Error>,
) -> (&'static str, String) {
    let code = match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        s if s >= 500 => "internal",
        _ => "http_error",
    };
    let message = match error {
        Some(e) => e.to_string(),
        None => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_owned(),
    };
    (code, message)
}
