package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of a run stopped by a signal, as a shell reports a process
// killed by it (128 + the signal's number).
const (
	exitInterrupt = 130 // SIGINT
	exitTerminate = 143 // SIGTERM
)

// Causes of a cancelled run context. [App.Run] maps them to exit codes 130
// and 143.
var (
	ErrInterrupted = errors.New("interrupted (SIGINT)")
	ErrTerminated  = errors.New("terminated (SIGTERM, e.g. a Jenkins abort)")
)

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
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrInterrupted):
		return exitInterrupt, true
	case errors.Is(cause, ErrTerminated):
		return exitTerminate, true
	}
	return 0, false
}
