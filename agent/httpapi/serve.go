package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/baepo/baepo/agent"
)

// ShutdownGrace is how long running steps may finish after SIGTERM before
// they are cancelled.
const ShutdownGrace = 30 * time.Second

// Serve listens on cfg's address and serves the API of a until ctx is
// cancelled; then it stops accepting requests, lets running steps finish for
// up to grace, cancels the rest and returns. ready, when not nil, is called
// with the address once the agent accepts requests.
func Serve(ctx context.Context, a *agent.Agent, cfg *agent.Config, logger *slog.Logger, grace time.Duration, ready func(addr net.Addr)) error {
	hc := cfg.HTTP
	if err := checkOpenFiles(hc.MaxConnections); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Past the cap, connections wait in the kernel's accept queue, not in
	// the agent's file descriptors. The cap wraps the TCP listener, below
	// TLS, so a handshake in progress holds a slot too.
	ln = netutil.LimitListener(ln, hc.MaxConnections)
	if cfg.TLS != nil {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	stepsCtx, cancelSteps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSteps()
	// ReadTimeout and WriteTimeout stay 0: they bound a whole request, and
	// a step streams its events for up to step_timeout, an upload may be
	// gigabytes. limitIO bounds each read of a body and each write of a
	// response instead.
	srv := &http.Server{
		Handler:           limitIO(logRequests(logger, Handler(a, cfg.Token(), logger)), time.Duration(hc.ReadTimeout), time.Duration(hc.WriteTimeout)),
		ReadHeaderTimeout: time.Duration(hc.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(hc.IdleTimeout),
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return stepsCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("agent ready", "listen", ln.Addr().String(), "tls", cfg.TLS != nil, "services", len(a.Services()), "max_connections", hc.MaxConnections)
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: running steps may finish", "grace", grace)
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	context.AfterFunc(shutCtx, cancelSteps)
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Steps cancelled at the end of the grace period still write their
	// history; give their handlers a moment to return.
	cancelSteps()
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	_ = srv.Shutdown(closeCtx)
	logger.Info("agent stopped")
	return nil
}

// reservedFiles are the file descriptors the agent keeps for itself beside
// its connections: the listener, the store, history, plugins' sockets,
// the files of a step.
const reservedFiles = 64

// checkOpenFiles makes sure the process may hold conns connections and its
// own files. (The Go runtime has already raised the soft RLIMIT_NOFILE to
// the hard limit.) Past the limit, accept fails with "too many open files"
// and every other file the agent opens fails with it.
func checkOpenFiles(conns int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // nothing to check against
	}
	unlimited := lim.Cur == ^uint64(0)
	if !unlimited && uint64(conns)+reservedFiles > lim.Cur {
		return fmt.Errorf("http.max_connections: %d connections and %d files of the agent's own are more than the open-file limit of %d: lower http.max_connections or raise the limit (LimitNOFILE= in the systemd unit, ulimit -n)", conns, reservedFiles, lim.Cur)
	}
	return nil
}

// limitIO bounds how long a read of a request body or a write of a response
// may stall, per read and per write: a client that trickles a body or
// stops reading a step's events loses the request, while one that makes
// progress may take as long as the request needs.
func limitIO(next http.Handler, read, write time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// A request without a body must keep its connection's read
		// deadline unset: the server reads the connection in the
		// background to notice a client that goes away, and a deadline
		// there would end the request's context.
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, d: read}
		}
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, d: write}, r)
	})
}

// deadlineBody sets the connection's read deadline before each read of a
// request body, until the body ends: then the server's background read
// takes over the connection and clears the deadline.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	d    time.Duration
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	_ = b.rc.SetReadDeadline(time.Now().Add(b.d))
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.done = true
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("request body: nothing arrived for %s: %w", b.d, err)
		}
	}
	return n, err
}

// deadlineWriter sets the connection's write deadline before each write of
// a response; the server clears it when the response is done.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) arm() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *deadlineWriter) WriteHeader(status int) {
	w.arm()
	w.ResponseWriter.WriteHeader(status)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError is what http.ResponseController.Flush calls.
func (w *deadlineWriter) FlushError() error {
	w.arm()
	return w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func tlsConfig(c *agent.TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCA != "" {
		pem, err := os.ReadFile(c.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.client_ca: %s holds no PEM certificate", c.ClientCA)
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return tc, nil
}
