package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/step"
)

// Agents reaches the agents of an inventory over their HTTP API. It is the
// engine.Target of real runs: keep-alive connections per server, artifacts
// uploaded once per server, step progress streamed into the log.
type Agents struct {
	inv    *Inventory
	getenv func(string) string
	logger *slog.Logger
	run    string      // this run's id: the agents lease a service to it
	retry  retryPolicy // of uploads that meet a network failure

	mu        sync.Mutex
	conns     map[string]*conn
	digests   map[string]*digestOnce // by local path
	uploads   map[string]*uploadOnce // by server + digest
	leased    map[[2]string]bool     // server, service pairs this run changed
	journaled map[string]bool        // servers this run sent a journaled step: they keep a record of it
	artifacts []api.ArtifactRef      // the run's artifacts, as the agents got them
}

// NewAgentTarget returns the engine target that reaches the servers of inv.
// Tokens are read when a server is first used.
func NewAgentTarget(inv *Inventory, getenv func(string) string, logger *slog.Logger) (engine.Target, error) {
	return newAgents(inv, getenv, logger), nil
}

func newAgents(inv *Inventory, getenv func(string) string, logger *slog.Logger) *Agents {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Agents{inv: inv, getenv: getenv, logger: logger, run: hex.EncodeToString(id), retry: uploadRetry, conns: map[string]*conn{},
		digests: map[string]*digestOnce{}, uploads: map[string]*uploadOnce{}, leased: map[[2]string]bool{}, journaled: map[string]bool{}}
}

// conn is the API client of one agent.
type conn struct {
	server string
	api    *api.Client
}

func (a *Agents) conn(server string) (*conn, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.conns[server]; ok {
		return c, nil
	}
	s, ok := a.inv.Servers[server]
	if !ok {
		return nil, usagef("server %s is not in %s", server, a.inv.File)
	}
	token, err := s.Token(a.getenv)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // agents are reached directly, never through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if s.CA != "" {
		pem, err := os.ReadFile(s.CA)
		if err != nil {
			return nil, usagef("server %s: ca: %v", server, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("server %s: ca %s holds no PEM certificate", server, s.CA)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if s.Cert != "" {
		cert, err := tls.LoadX509KeyPair(s.Cert, s.Key)
		if err != nil {
			return nil, usagef("server %s: cert/key: %v", server, err)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	c := &conn{server: server, api: &api.Client{Base: strings.TrimRight(s.Agent, "/"), Token: token, HTTP: &http.Client{Transport: tr}}}
	a.conns[server] = c
	return c, nil
}

// fail maps an error of the agent API to what the engine reads: transport
// failures before the request and refused credentials wrap
// engine.ErrUnreachable, a 409 is engine.ErrBusy, a request the agent
// refused before acting on it (no such step, command not allow-listed,
// malformed arguments) is engine.ErrRefused; anything else names the
// server and says what the agent said.
func (c *conn) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", c.server, context.Cause(ctx))
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Code {
		case api.CodeAuth:
			return fmt.Errorf("%w: %s refused the credentials (check token_file/token_env of %s in the inventory)", engine.ErrUnreachable, c.server, c.server)
		case api.CodeBusy:
			// Another run holds the service: this step changed nothing.
			return markedError{fmt.Errorf("%s: %w", c.server, ae), engine.ErrBusy}
		case api.CodeBadRequest, api.CodeNotFound, api.CodeNotAllowed, api.CodeTooLarge, api.CodeBadArtifact:
			// Refused before the agent acted on it: nothing changed, and
			// asking again will not help.
			return markedError{fmt.Errorf("%s: %w", c.server, ae), engine.ErrRefused}
		}
		return fmt.Errorf("%s: %w", c.server, ae)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", c.server, err)
	}
	if !beforeRequest(err) {
		// The agent may have started the step: this is no proof that
		// nothing changed.
		return fmt.Errorf("%s (%s): connection lost: %v", c.server, c.api.Base, ue.Err)
	}
	return fmt.Errorf("%w: %s (%s): %v", engine.ErrUnreachable, c.server, c.api.Base, ue.Err)
}

// markedError is an agent's answer that reads as the agent's message and
// is mark (engine.ErrBusy, engine.ErrRefused) to the engine.
type markedError struct{ err, mark error }

func (e markedError) Error() string   { return e.err.Error() }
func (e markedError) Unwrap() []error { return []error{e.err, e.mark} }

// beforeRequest reports whether a transport error happened before the agent
// could have read the request: no connection, no name, no TLS session.
func beforeRequest(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var alert tls.AlertError
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	// "remote error" is a TLS alert: the agent refused the handshake (a
	// missing client certificate shows after the request is written, but the
	// agent never read it).
	return (errors.As(err, &op) && (op.Op == "dial" || op.Op == "remote error")) || errors.As(err, &dns) || errors.As(err, &alert) ||
		errors.As(err, &verify) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &invalid) || errors.As(err, &record)
}

// Instances implements engine.Target.
func (a *Agents) Instances(ctx context.Context, server, service string) ([]engine.Instance, error) {
	c, err := a.conn(server)
	if err != nil {
		return nil, err
	}
	svcs, err := c.api.Services(ctx)
	if err != nil {
		return nil, c.fail(ctx, err)
	}
	var out []engine.Instance
	var names []string
	for _, s := range svcs.Services {
		names = append(names, s.Name)
		if service != "" && s.Name != service {
			continue
		}
		for _, i := range s.Instances {
			out = append(out, engine.Instance{Server: server, Service: s.Name, Name: i, Balancer: s.Balancers[i], Mode: s.Mode})
		}
	}
	if service != "" && !slices.Contains(names, service) {
		return nil, fmt.Errorf("unknown service %q on %s (it has %s)", service, server, listOrNone(names))
	}
	return out, nil
}

// Do implements engine.Target: it sends one step and follows its stream.
func (a *Agents) Do(ctx context.Context, inst engine.Instance, st engine.Step) (engine.StepResult, error) {
	c, err := a.conn(inst.Server)
	if err != nil {
		return engine.StepResult{}, err
	}
	args := st.Args
	if st.Name == step.Install {
		art, ok := args["artifact"].(engine.Artifact)
		if !ok {
			return engine.StepResult{}, fmt.Errorf("install %s: artifact %v was not checked by the engine (call i:install(artifact))", inst, args["artifact"])
		}
		ref, err := a.artifactRef(ctx, c, art)
		if err != nil {
			return engine.StepResult{}, err
		}
		args = maps.Clone(args)
		args["artifact"] = ref
	}
	info := step.Of(st.Name)
	a.mu.Lock()
	if info.Changes {
		a.leased[[2]string{inst.Server, inst.Service}] = true
	}
	if info.Journaled {
		a.journaled[inst.Server] = true
	}
	a.mu.Unlock()
	req := api.StepRequest{Args: args, Build: api.Build(st.Build), User: a.getenv("USER"), Run: a.run}
	log := a.logger.With("instance", inst.String(), "step", st.Name)
	res, err := c.api.Step(ctx, inst.Service, inst.Name, st.Name, req, func(ev api.Event) {
		if ev.Msg != "" {
			log.Info(ev.Msg)
		}
	})
	var ae *api.Error
	switch {
	case err == nil:
		return engine.StepResult{Message: res.Message, Output: res.Output}, nil
	case ctx.Err() != nil:
		return engine.StepResult{}, fmt.Errorf("%s %s: %w", st.Name, inst, context.Cause(ctx))
	case errors.As(err, &ae) && ae.Code == api.CodeStepFailed:
		return engine.StepResult{}, errors.New(ae.Message)
	case errors.Is(err, api.ErrStreamCut):
		return engine.StepResult{}, fmt.Errorf("%s %s: %v (did it restart? see baepo history)", st.Name, inst, err)
	}
	return engine.StepResult{}, c.fail(ctx, err)
}

// Prepare uploads every local artifact to every server before the first
// step, in parallel across servers; an agent that already has an artifact
// gets no bytes. It implements engine.Preparer.
func (a *Agents) Prepare(ctx context.Context, servers []string, artifacts []engine.Artifact) error {
	return a.eachServer(servers, func(_ int, c *conn) error {
		for _, art := range artifacts {
			if _, err := a.artifactRef(ctx, c, art); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachServer calls fn with the connection of every server, in parallel,
// and joins their errors; i is the server's index in servers.
func (a *Agents) eachServer(servers []string, fn func(i int, c *conn) error) error {
	return parallel(len(servers), func(i int) error {
		c, err := a.conn(servers[i])
		if err != nil {
			return err
		}
		return fn(i, c)
	})
}

// parallel calls fn(0) to fn(n-1) at once and joins their errors, in order.
func parallel(n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// artifactRef turns an artifact into what the agent's install takes: a
// local file is hashed once and uploaded once per server; a URL goes with
// the digest it carries, for the agent to download and check.
func (a *Agents) artifactRef(ctx context.Context, c *conn, art engine.Artifact) (api.ArtifactRef, error) {
	if art.URL != "" {
		return a.used(api.ArtifactRef{URL: art.URL, SHA256: art.SHA256, Name: filepath.Base(art.URL)}), nil
	}
	digest, size, err := a.digest(art.Path)
	if err != nil {
		return api.ArtifactRef{}, err
	}
	if err := a.upload(ctx, c, art.Path, digest, size); err != nil {
		return api.ArtifactRef{}, err
	}
	return a.used(api.ArtifactRef{SHA256: digest, Name: filepath.Base(art.Path)}), nil
}

// used notes ref as one of the run's artifacts, for the end of the run.
func (a *Agents) used(ref api.ArtifactRef) api.ArtifactRef {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.artifacts, ref) {
		a.artifacts = append(a.artifacts, ref)
	}
	return ref
}

type digestOnce struct {
	once   sync.Once
	digest string
	size   int64
	err    error
}

// digest hashes a local artifact once per run.
func (a *Agents) digest(path string) (string, int64, error) {
	a.mu.Lock()
	d, ok := a.digests[path]
	if !ok {
		d = &digestOnce{}
		a.digests[path] = d
	}
	a.mu.Unlock()
	d.once.Do(func() { d.digest, d.size, d.err = hashFile(path) })
	return d.digest, d.size, d.err
}

// hashFile returns the sha256 and the size of a local artifact.
func hashFile(path string) (digest string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, usagef("artifact: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if size, err = io.Copy(h, f); err != nil {
		return "", 0, fmt.Errorf("artifact %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

type uploadOnce struct {
	mu   sync.Mutex
	done bool
}

// upload sends an artifact to one agent unless it has it already. Only one
// upload of a digest to a server runs at a time; later callers wait for it.
// A network failure is retried (see [retryPolicy]); one that outlasts the
// retries is engine.ErrUnreachable: an upload changes no instance.
func (a *Agents) upload(ctx context.Context, c *conn, path, digest string, size int64) error {
	key := c.server + "/" + digest
	a.mu.Lock()
	u, ok := a.uploads[key]
	if !ok {
		u = &uploadOnce{}
		a.uploads[key] = u
	}
	a.mu.Unlock()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return nil
	}
	log := a.logger.With("server", c.server, "artifact", filepath.Base(path))
	start := time.Now()
	sent := false
	// Each attempt asks first: a PUT whose answer was lost may have stored
	// the artifact. Each sends the file from its start.
	err := a.retry.do(ctx, func() error {
		if has, err := c.api.HasArtifact(ctx, digest); err != nil || has {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return usagef("artifact: %v", err)
		}
		defer f.Close()
		_, err = c.api.PutArtifact(ctx, digest, f, size)
		sent = err == nil
		return err
	}, func(err error, wait time.Duration) {
		log.Warn("upload failed: trying again", "in", wait.Round(time.Millisecond), "error", c.fail(ctx, err))
	})
	var ae *api.Error
	var usage *engine.UsageError
	var netErr *url.Error
	switch {
	case err == nil && !sent:
		log.Info("agent has the artifact: 0 bytes uploaded", "sha256", digest[:12])
	case err == nil:
		took := time.Since(start)
		log.Info("artifact uploaded", "bytes", size, "took", took.Round(time.Millisecond), "MB/s", strconv.FormatFloat(float64(size)/1e6/max(took.Seconds(), 1e-6), 'f', 1, 64))
	case errors.As(err, &usage):
		return err
	case errors.As(err, &ae) && (ae.Code == api.CodeBadArtifact || ae.Code == api.CodeTooLarge):
		return usagef("artifact %s refused by %s: %s", path, c.server, ae.Message)
	case ctx.Err() == nil && errors.As(err, &netErr):
		return fmt.Errorf("%w: upload %s to %s (%s): %v (%d attempts)", engine.ErrUnreachable, path, c.server, c.api.Base, netErr.Err, a.retry.tries)
	default:
		return fmt.Errorf("upload %s: %w", path, c.fail(ctx, err))
	}
	u.done = true
	return nil
}

// retryPolicy is how a request that is safe to repeat (an upload: the
// artifact is stored by its digest, and changes no instance) is tried
// again after a network failure: tries attempts in all, waiting first,
// then twice as long each time, ±50% so that the uploads of parallel
// servers do not retry in step.
type retryPolicy struct {
	tries uint
	first time.Duration
}

// uploadRetry is the policy of uploads: 4 attempts over about 7 seconds,
// time for an agent that restarts or a connection that was reset.
var uploadRetry = retryPolicy{tries: 4, first: time.Second}

// do calls op until it succeeds, fails other than by a network failure,
// or p.tries attempts have failed; notify hears of each failure that is
// tried again. ctx cuts the waits short.
func (p retryPolicy) do(ctx context.Context, op func() error, notify func(err error, wait time.Duration)) error {
	b := &backoff.ExponentialBackOff{InitialInterval: p.first, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: time.Minute}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := op()
		if err != nil && (ctx.Err() != nil || !networkFailure(err)) {
			err = backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(p.tries), backoff.WithMaxElapsedTime(0), backoff.WithNotify(notify))
	if pe := (*backoff.PermanentError)(nil); errors.As(err, &pe) {
		return pe.Err // the last try returns it wrapped
	}
	return err
}

// networkFailure reports whether err is a transport error: no connection,
// a connection reset or closed before the answer.
func networkFailure(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// End is called once the run is over. It ends the run's leases on the
// services it changed, so the next run need not wait for them to expire,
// and tells every agent it sent a journaled step how the run ended (rep;
// nil when the run stopped before its first step), for their history. An
// agent with no record of the run (an older agent, or one that refused
// the step) says not_found: that is no failure.
func (a *Agents) End(ctx context.Context, rep *engine.Report) {
	a.mu.Lock()
	pairs := slices.Collect(maps.Keys(a.leased))
	var servers []string
	var end api.RunEnd
	if rep != nil {
		servers = slices.Sorted(maps.Keys(a.journaled))
		end = runEnd(rep, slices.Clone(a.artifacts))
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pairs {
		wg.Go(func() {
			c, err := a.conn(p[0])
			if err != nil {
				return
			}
			if _, err := c.api.ReleaseLease(ctx, p[1], a.run); err != nil {
				a.logger.Warn("release lease", "server", p[0], "service", p[1], "error", c.fail(ctx, err))
			}
		})
	}
	for _, server := range servers {
		wg.Go(func() {
			c, err := a.conn(server)
			if err != nil {
				return
			}
			var ae *api.Error
			switch _, err := c.api.EndRun(ctx, a.run, end); {
			case errors.As(err, &ae) && ae.Code == api.CodeNotFound:
				a.logger.Debug("the agent keeps no record of the run", "server", server, "error", ae)
			case err != nil:
				a.logger.Warn("record the end of the run", "server", server, "error", c.fail(ctx, err))
			}
		})
	}
	wg.Wait()
}

// runEnd is how the run of rep ended, as the agents record it.
func runEnd(rep *engine.Report, artifacts []api.ArtifactRef) api.RunEnd {
	counts := map[string]int{}
	for _, ir := range rep.Instances {
		counts[ir.Result]++
	}
	return api.RunEnd{Started: rep.Started, Duration: rep.Duration, Template: rep.Template, Outcome: rep.Outcome,
		ExitCode: rep.ExitCode, Error: headline(rep.Error), Artifacts: artifacts, Counts: counts}
}

// History reads the journal of server's agent: the runs and steps q
// selects. It implements historyReader.
func (a *Agents) History(ctx context.Context, server string, q api.HistoryQuery) (api.History, error) {
	c, err := a.conn(server)
	if err != nil {
		return api.History{}, err
	}
	h, err := c.api.History(ctx, q)
	return h, c.fail(ctx, err)
}

var (
	_ engine.Target   = (*Agents)(nil)
	_ engine.Preparer = (*Agents)(nil)
	_ historyReader   = (*Agents)(nil)
	_ runEnder        = (*Agents)(nil)
)
