package sdk

import (
	"context"
	"errors"
	"fmt"

	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// This file maps a driver's errors to gRPC statuses and back, in one place.
// A driver's error crosses the wire as its text and one bit: whether it
// wraps ErrUnknownStep (codes.NotFound) or not (codes.Unknown).

// remoteError is a driver's error as the host sees it: the plugin's text,
// unchanged, wrapping ErrUnknownStep when the plugin's error did.
type remoteError struct {
	msg  string
	wrap error // ErrUnknownStep or nil
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.wrap }

// toStatus is the plugin side: it turns a driver's error into the status the
// gRPC handler returns.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnknownStep) {
		return status.Error(codes.NotFound, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

// fromStatus is the host side: it turns the error of a gRPC call named
// method back into a driver's error. When ctx is done the error wraps
// ctx.Err(), whatever the plugin answered; when the call failed for any
// other reason than the driver's error (the plugin crashed, say), it says
// so and wraps the gRPC status.
func fromStatus(ctx context.Context, method string, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctxErr(ctx); cerr != nil {
		return fmt.Errorf("driver plugin: %s: %w", method, cerr)
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("driver plugin: %s: %w", method, err)
	}
	switch st.Code() {
	case codes.NotFound:
		return &remoteError{msg: st.Message(), wrap: ErrUnknownStep}
	case codes.Unknown:
		return &remoteError{msg: st.Message()}
	}
	return fmt.Errorf("driver plugin: %s: %w", method, err)
}

// ctxErr is ctx.Err(), or DeadlineExceeded as soon as ctx's deadline has
// passed: the plugin may answer that its ctx's deadline passed before
// ctx's own timer has fired.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}
