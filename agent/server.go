package agent

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/agent/artifact"
)

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// apiErrorf makes an error the API returns with code's status.
func apiErrorf(code, format string, args ...any) *api.Error {
	return &api.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// handlerFunc is a handler that returns its error; serve maps it to a JSON
// error response in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler returns the agent's HTTP API.
func (a *Agent) Handler() http.Handler {
	r := httprouter.New()
	// A path with .. must reach the handlers, which refuse it with 400;
	// redirects to a cleaned path would send a client somewhere else.
	r.RedirectFixedPath = false
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		a.log.Error("panic in handler", "method", req.Method, "path", req.URL.Path, "panic", v)
		writeError(w, apiErrorf(api.CodeInternal, "internal error (see the agent log)"))
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, apiErrorf(api.CodeNotFound, "no such endpoint %s %s", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, &api.Error{Code: "method_not_allowed", Message: fmt.Sprintf("%s is not allowed on %s", req.Method, req.URL.Path)})
	})
	r.Handler(http.MethodGet, "/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}))
	auth := func(h http.Handler) http.Handler { return a.auth(h) }
	r.Handler(http.MethodGet, "/metrics", auth(promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})))
	for _, route := range []struct {
		method, path string
		h            handlerFunc
	}{
		{http.MethodGet, "/v1/agent", a.getAgent},
		{http.MethodGet, "/v1/services", a.getServices},
		{http.MethodGet, "/v1/services/:service/instances/:instance", a.getInstance},
		{http.MethodPost, "/v1/services/:service/instances/:instance/steps/:step", a.postStep},
		{http.MethodHead, "/v1/artifacts/sha256/:digest", a.headArtifact},
		{http.MethodPut, "/v1/artifacts/sha256/:digest", a.putArtifact},
		{http.MethodGet, "/v1/history", a.getHistory},
		{http.MethodDelete, "/v1/services/:service/lease/:run", a.deleteLease},
	} {
		r.Handler(route.method, route.path, auth(a.serve(route.h)))
	}
	return r
}

func (a *Agent) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			var ae *api.Error
			if !errors.As(err, &ae) {
				a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
				ae = apiErrorf(api.CodeInternal, "%v", err)
			}
			writeError(w, ae)
		}
	})
}

// auth checks the bearer token in constant time.
func (a *Agent) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + a.cfg.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			a.log.Warn("request refused: bad or missing token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="baepo-agent"`)
			writeError(w, apiErrorf(api.CodeAuth, "missing or wrong bearer token (check the token_file or token_env of this server in inventory.yaml)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, e *api.Error) {
	writeJSON(w, api.Status(e.Code), e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a bounded JSON body; an empty body leaves v as it is.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Body == nil || r.ContentLength == 0 {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apiErrorf(api.CodeTooLarge, "request body over %d bytes", maxJSONBody)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return apiErrorf(api.CodeBadRequest, "bad JSON body: %v", err)
	}
	return nil
}

func (a *Agent) getAgent(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Agent{Version: a.version, Drivers: a.drivers.Names()})
	return nil
}

func (a *Agent) getServices(w http.ResponseWriter, r *http.Request) error {
	out := api.Services{Services: []api.Service{}}
	for _, name := range sortedKeys(a.services) {
		svc := a.services[name]
		out.Services = append(out.Services, api.Service{Name: name, Driver: svc.cfg.Driver, Context: svc.cfg.Context, Instances: sortedKeys(svc.instances)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteLease ends a run's hold on a service; the client calls it when the
// run ends. Ending a lease the run does not hold is not an error.
func (a *Agent) deleteLease(w http.ResponseWriter, r *http.Request) error {
	p := httprouter.ParamsFromContext(r.Context())
	svc, ok := a.services[p.ByName("service")]
	if !ok {
		return apiErrorf(api.CodeNotFound, "unknown service %q", p.ByName("service"))
	}
	released := svc.release(p.ByName("run"))
	writeJSON(w, http.StatusOK, map[string]bool{"released": released})
	return nil
}

func (a *Agent) getInstance(w http.ResponseWriter, r *http.Request) error {
	p := httprouter.ParamsFromContext(r.Context())
	inst, err := a.lookup(p.ByName("service"), p.ByName("instance"))
	if err != nil {
		return err
	}
	res, err := a.status(r.Context(), inst)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *Agent) headArtifact(w http.ResponseWriter, r *http.Request) error {
	digest := httprouter.ParamsFromContext(r.Context()).ByName("digest")
	if !artifact.ValidDigest(digest) {
		w.WriteHeader(http.StatusBadRequest)
		return nil
	}
	size, ok, err := a.store.Has(digest)
	if err != nil {
		return err
	}
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return nil
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *Agent) putArtifact(w http.ResponseWriter, r *http.Request) error {
	digest := httprouter.ParamsFromContext(r.Context()).ByName("digest")
	if !artifact.ValidDigest(digest) {
		return apiErrorf(api.CodeBadRequest, "bad digest %q: want 64 lower-case hex characters of the artifact's sha256", digest)
	}
	limit := int64(a.cfg.MaxArtifact)
	if r.ContentLength > limit {
		return apiErrorf(api.CodeTooLarge, "artifact of %d bytes is over max_artifact_size (%d bytes)", r.ContentLength, limit)
	}
	n, err := a.store.Put(r.Context(), digest, r.Body, limit)
	switch {
	case errors.Is(err, artifact.ErrTooLarge):
		return apiErrorf(api.CodeTooLarge, "artifact is over max_artifact_size (%d bytes)", limit)
	case errors.Is(err, artifact.ErrDigestMismatch), errors.Is(err, artifact.ErrNotZip):
		return apiErrorf(api.CodeBadArtifact, "%v", err)
	case err != nil:
		return fmt.Errorf("store artifact %s: %w", digest, err)
	}
	a.metrics.uploadBytes.Add(float64(n))
	a.log.Info("artifact stored", "sha256", digest, "bytes", n)
	writeJSON(w, http.StatusCreated, map[string]any{"sha256": digest, "size": n})
	return nil
}

func (a *Agent) getHistory(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := historyFilter(q.Get("service"), q.Get("instance"), q.Get("step"))
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return apiErrorf(api.CodeBadRequest, "limit: %q is not a count", s)
		}
		f.Limit = n
	}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return apiErrorf(api.CodeBadRequest, "since: %q is not an RFC 3339 time", s)
		}
		f.Since = t
	}
	entries, err := a.journal.List(f)
	if err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	if entries == nil {
		entries = []api.HistoryEntry{}
	}
	writeJSON(w, http.StatusOK, api.History{Entries: entries})
	return nil
}

// logRequests logs each request at debug level.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		if !strings.HasPrefix(r.URL.Path, "/healthz") {
			log.Debug("request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
		}
	})
}
