package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/codec"
)

// Errors a caller can match with errors.Is.
var (
	// ErrNotRegistered: a lookup-only registry does not have the schema
	// (or the subject has no version yet).
	ErrNotRegistered = errors.New("schema: not registered")
	// ErrUnavailable: the registry did not answer in time, refused the
	// connection, answered 5xx, or something that is not the registry
	// answered in its place (a proxy's or an ingress's own error page, a
	// redirect, an answer without the registry's JSON error code).
	// Retrying may succeed.
	ErrUnavailable = errors.New("schema: registry unavailable")
	// ErrBadResponse: the registry answered something that is not the
	// JSON the API defines.
	ErrBadResponse = errors.New("schema: bad registry response")
	// ErrUnauthorized: the registry refused the credentials (401/403).
	ErrUnauthorized = errors.New("schema: registry refused the credentials")
)

// classify wraps an error from the registry client in the sentinel that
// says what a caller can do about it. It is the one place that reads the
// registry's answers.
//
// An error answer is the registry's own only when its body is the API's
// JSON error with an error_code (franz-go leaves ErrorCode 0 for any other
// body). Only such an answer is a verdict: a 404 is notFound when its code
// is one of notFoundCodes, the codes the registry answers this call with
// (40403 for a schema id). A proxy or an ingress in front of the registry
// answers 404 with its own text or HTML page when it is misrouted: that
// says nothing about the schema, so it, and every other answer (another
// status, another code), is ErrUnavailable, which a consumer waits out
// instead of dead-lettering the record.
func classify(op string, err error, notFound error, notFoundCodes ...int) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode // 0 unless the body is the registry's JSON
		switch {
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s: %w (HTTP %d)", op, ErrUnauthorized, re.StatusCode)
		case re.StatusCode == http.StatusNotFound && code != 0 && slices.Contains(notFoundCodes, code):
			return fmt.Errorf("%s: %w: %s", op, notFound, re.Error())
		case code == sr.ErrIncompatibleSchema.Code:
			return fmt.Errorf("%s: %w: registry says: %s", op, codec.ErrIncompatible, re.Error())
		case code/100 == http.StatusUnprocessableEntity:
			return fmt.Errorf("%s: %w: registry says: %s", op, codec.ErrInvalidSchema, re.Error())
		case code != 0:
			return fmt.Errorf("%s: %w: HTTP %d from %s, error code %d: %s", op, ErrUnavailable, re.StatusCode, re.URL, code, truncate(re.Error(), 200))
		}
		return fmt.Errorf("%s: %w: HTTP %d from %s without the registry's JSON error (a proxy or ingress in front of the registry, or a wrong URL?): %q",
			op, ErrUnavailable, re.StatusCode, re.URL, truncate(string(re.Raw), 200))
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		netErr net.Error
		urlErr *url.Error
	)
	switch {
	case errors.As(err, &syntax), errors.As(err, &typ):
		return fmt.Errorf("%s: %w: %v", op, ErrBadResponse, err)
	case errors.As(err, &urlErr):
		// The client's text names the URL, and the url.Error it wraps
		// again: name it once.
		return fmt.Errorf("%s: %w: %s %s: %w", op, ErrUnavailable, urlErr.Op, urlErr.URL, urlErr.Err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
