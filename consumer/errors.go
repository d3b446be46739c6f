package consumer

import (
	"errors"
	"fmt"
	"strconv"
)

// Errors a caller can match with errors.Is.
var (
	// ErrClosed: Run was called on a consumer that was closed, or twice.
	ErrClosed = errors.New("consumer: closed")
	// ErrNoHandlers: Run was called before any handler was registered.
	ErrNoHandlers = errors.New("consumer: no handlers: register them with consumer.Handle before Run")
	// ErrRegistration: a handler could not be registered (a type with a
	// definition error, or a type registered twice).
	ErrRegistration = errors.New("consumer: bad handler registration")
	// ErrDrain: Close's context ended before every handler call under way
	// had returned; those records were not committed and will be handled
	// again by the next owner of their partitions.
	ErrDrain = errors.New("consumer: handlers still running when the shutdown context ended")
)

// permanentError marks a handler error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: a handler that returns it (or
// an error wrapping it) is not run again for that record, which goes to
// the dead-letter topic at once with dlt-error-kind "permanent". It
// returns nil for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// transientError marks a failure that is not the record's fault (the
// schema registry or the database is unavailable, a transaction conflicted
// with another): the record is retried for as long as it takes, without
// counting attempts and never dead-lettered.
type transientError struct {
	err      error
	conflict bool // a conflict between transactions, not an outage
}

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// poisonError marks a record that cannot be decoded or lacks what a
// CloudEvent must carry.
type poisonError struct{ err error }

func (e *poisonError) Error() string { return e.err.Error() }
func (e *poisonError) Unwrap() error { return e.err }

func poison(format string, args ...any) error {
	return &poisonError{err: fmt.Errorf(format, args...)}
}

// panicError is a handler panic turned into an error.
type panicError struct{ value any }

func (e *panicError) Error() string { return "handler panicked: " + fmt.Sprint(e.value) }

// registrationError names the handler registration at fault.
func registrationError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRegistration}, args...)...)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
