package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/baepo/baepo/engine"
)

// Exit codes of a run stopped by a signal, as a shell reports a process
// killed by it (128 + the signal's number).
const (
	exitInterrupt = 130 // SIGINT
	exitTerminate = 143 // SIGTERM
)

// Causes of a cancelled run context. Each is an [engine.ExitCoder] with
// exit code 130 or 143, so that a run's log, its summary, its reports and
// [App.Run] all say the code the process exits with.
var (
	ErrInterrupted error = &signalError{"interrupted (SIGINT)", exitInterrupt}
	ErrTerminated  error = &signalError{"terminated (SIGTERM, e.g. a Jenkins abort)", exitTerminate}
)

// signalError is the cause of a run stopped by a signal.
type signalError struct {
	msg  string
	code int
}

func (e *signalError) Error() string { return e.msg }
func (e *signalError) ExitCode() int { return e.code }

// WithSignals returns a context that the first SIGINT or SIGTERM cancels with
// cause [ErrInterrupted] or [ErrTerminated]: no new step starts and running
// steps finish. A second signal calls exit with 130 or 143 at once. stop
// releases the signal handlers.
func WithSignals(parent context.Context, stderr io.Writer, exit func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		interrupted := false
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				cause, code := ErrInterrupted, exitInterrupt
				if sig == syscall.SIGTERM {
					cause, code = ErrTerminated, exitTerminate
				}
				if interrupted {
					fmt.Fprintf(stderr, "baepo: %v again: exiting now; running steps may be cut short\n", cause)
					exit(code)
					return
				}
				interrupted = true
				fmt.Fprintf(stderr, "baepo: %v: no new step starts, running steps finish (signal again to exit at once)\n", cause)
				cancel(cause)
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(nil)
	}
}

// signalExit returns the exit code for a context cancelled by a signal, and
// false when no signal arrived.
func signalExit(ctx context.Context) (int, bool) {
	var se *signalError
	if errors.As(context.Cause(ctx), &se) {
		return se.code, true
	}
	return 0, false
}

var _ engine.ExitCoder = (*signalError)(nil)
