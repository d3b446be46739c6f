package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/codec"
)

// Errors a caller can match with errors.Is.
var (
	// ErrNotRegistered: a lookup-only registry does not have the schema
	// (or the subject has no version yet).
	ErrNotRegistered = errors.New("schema: not registered")
	// ErrUnavailable: the registry did not answer in time, refused the
	// connection, or answered 5xx. Retrying may succeed.
	ErrUnavailable = errors.New("schema: registry unavailable")
	// ErrBadResponse: the registry answered something that is not the
	// JSON the API defines.
	ErrBadResponse = errors.New("schema: bad registry response")
	// ErrUnauthorized: the registry refused the credentials (401/403).
	ErrUnauthorized = errors.New("schema: registry refused the credentials")
)

// Registry error codes (Confluent's Errors.java).
const (
	codeSubjectNotFound = 40401
	codeVersionNotFound = 40402
	codeSchemaNotFound  = 40403
	codeIncompatible    = 409
	codeInvalidSchema   = 42201
)

// classify wraps an error from the registry client in the sentinel that
// says what a caller can do about it. notFound is the sentinel a 404 maps
// to for this call.
func classify(op string, err error, notFound error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == 404 || re.ErrorCode/100 == 404:
			return fmt.Errorf("%s: %w: %s", op, notFound, re.Error())
		case re.StatusCode == 401 || re.StatusCode == 403:
			return fmt.Errorf("%s: %w (HTTP %d)", op, ErrUnauthorized, re.StatusCode)
		case re.ErrorCode == codeIncompatible || re.StatusCode == 409:
			return fmt.Errorf("%s: %w: registry says: %s", op, codec.ErrIncompatible, re.Error())
		case re.ErrorCode == codeInvalidSchema || re.StatusCode == 422:
			return fmt.Errorf("%s: %w: registry says: %s", op, codec.ErrInvalidSchema, re.Error())
		case re.StatusCode >= 500:
			return fmt.Errorf("%s: %w: HTTP %d: %s", op, ErrUnavailable, re.StatusCode, truncate(re.Error(), 200))
		}
		return fmt.Errorf("%s: registry answered HTTP %d: %s", op, re.StatusCode, truncate(re.Error(), 200))
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
	case errors.As(err, &netErr), errors.As(err, &urlErr):
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
