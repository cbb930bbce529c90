package httpapi

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
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/baepo/baepo/agent"
	"github.com/baepo/baepo/agent/api"
)

// MaxJSONBody bounds every JSON request body.
const MaxJSONBody = 1 << 20

// ErrorStatusCode is the HTTP status of an error code: the one place codes
// become statuses.
func ErrorStatusCode(code string) int {
	switch code {
	case api.CodeBadRequest:
		return http.StatusBadRequest
	case api.CodeAuth:
		return http.StatusUnauthorized
	case api.CodeNotFound:
		return http.StatusNotFound
	case api.CodeNotAllowed:
		return http.StatusMethodNotAllowed
	case api.CodeBusy:
		return http.StatusConflict
	case api.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case api.CodeBadArtifact:
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// server adapts the agent's core to HTTP.
type server struct {
	agent *agent.Agent
	token string
	log   *slog.Logger
}

// handlerFunc is a handler that returns its error; serve maps it to a JSON
// error response in one place.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler returns the agent's HTTP API over a; every route but healthz
// needs token.
func Handler(a *agent.Agent, token string, logger *slog.Logger) http.Handler {
	s := &server{agent: a, token: token, log: logger}
	r := httprouter.New()
	// A path with .. must reach the handlers, which refuse it with 400;
	// redirects to a cleaned path would send a client somewhere else.
	r.RedirectFixedPath = false
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		s.log.Error("panic in handler", "method", req.Method, "path", req.URL.Path, "panic", v)
		writeError(w, api.Errorf(api.CodeInternal, "internal error (see the agent log)"))
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, api.Errorf(api.CodeNotFound, "no such endpoint %s %q", req.Method, req.URL.Path))
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, api.Errorf(api.CodeNotAllowed, "%s is not allowed on %q", req.Method, req.URL.Path))
	})
	r.Handler(http.MethodGet, api.RouteHealthz, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	}))
	r.Handler(http.MethodGet, api.RouteMetrics, s.auth(promhttp.HandlerFor(a.Metrics(), promhttp.HandlerOpts{})))
	for _, route := range []struct {
		method, path string
		h            handlerFunc
	}{
		{http.MethodGet, api.RouteAgent, s.getAgent},
		{http.MethodGet, api.RouteServices, s.getServices},
		{http.MethodGet, api.RouteInstance, s.getInstance},
		{http.MethodPost, api.RouteStep, s.postStep},
		{http.MethodHead, api.RouteArtifact, s.headArtifact},
		{http.MethodPut, api.RouteArtifact, s.putArtifact},
		{http.MethodGet, api.RouteHistory, s.getHistory},
		{http.MethodDelete, api.RouteLease, s.deleteLease},
		{http.MethodPut, api.RouteRun, s.putRun},
	} {
		r.Handler(route.method, route.path, s.auth(s.serve(route.h)))
	}
	return r
}

func (s *server) serve(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, s.apiError(r, err))
		}
	})
}

// apiError is err as the API reports it: the core's *api.Error as it is,
// anything else as an internal error, logged.
func (s *server) apiError(r *http.Request, err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	return api.Errorf(api.CodeInternal, "%v", err)
}

// auth checks the bearer token in constant time.
func (s *server) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			s.log.Warn("request refused: bad or missing token", "remote", r.RemoteAddr, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="baepo-agent"`)
			writeError(w, api.Errorf(api.CodeAuth, "missing or wrong bearer token (check the token_file or token_env of this server in inventory.yaml)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, e *api.Error) {
	writeJSON(w, ErrorStatusCode(e.Code), e)
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return api.Errorf(api.CodeTooLarge, "request body over %d bytes", MaxJSONBody)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		return api.Errorf(api.CodeBadRequest, "bad JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return api.Errorf(api.CodeBadRequest, "bad JSON body: data after the first JSON value")
	}
	return nil
}

func (s *server) getAgent(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, s.agent.Info())
	return nil
}

func (s *server) getServices(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Services{Services: s.agent.Services(), Commands: s.agent.Commands()})
	return nil
}

func (s *server) getInstance(w http.ResponseWriter, r *http.Request) error {
	p := httprouter.ParamsFromContext(r.Context())
	res, err := s.agent.Status(r.Context(), p.ByName("service"), p.ByName("instance"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// postStep runs one step and streams its progress. A step refused before
// anything ran answers with a plain error status; once the step has
// started, the answer is 200 and the outcome is the stream's last event.
func (s *server) postStep(w http.ResponseWriter, r *http.Request) error {
	p := httprouter.ParamsFromContext(r.Context())
	var req api.StepRequest
	if err := readJSON(w, r, &req); err != nil {
		return err
	}
	var (
		once sync.Once
		out  *api.EventWriter
	)
	open := func() {
		once.Do(func() {
			w.Header().Set("Content-Type", api.ContentTypeEvents)
			w.WriteHeader(http.StatusOK)
			out = api.NewEventWriter(w, http.NewResponseController(w).Flush)
		})
	}
	res, err := s.agent.Step(r.Context(), p.ByName("service"), p.ByName("instance"), p.ByName("step"), req, func(msg string) {
		open()
		_ = out.Send(api.Event{Level: "info", Msg: msg})
	})
	var ae *api.Error
	if err != nil && out == nil && errors.As(err, &ae) {
		return err // refused before anything ran
	}
	open()
	if err != nil {
		_ = out.Send(api.Event{Error: &api.Error{Code: api.CodeStepFailed, Message: err.Error()}})
		return nil
	}
	_ = out.Send(api.Event{Result: &res})
	return nil
}

func (s *server) headArtifact(w http.ResponseWriter, r *http.Request) error {
	size, ok, err := s.agent.HasArtifact(httprouter.ParamsFromContext(r.Context()).ByName("digest"))
	switch {
	case err != nil:
		// A HEAD answer has no body: the status says it all.
		w.WriteHeader(ErrorStatusCode(s.apiError(r, err).Code))
	case !ok:
		w.WriteHeader(http.StatusNotFound)
	default:
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

func (s *server) putArtifact(w http.ResponseWriter, r *http.Request) error {
	digest := httprouter.ParamsFromContext(r.Context()).ByName("digest")
	n, err := s.agent.PutArtifact(r.Context(), digest, r.Body, r.ContentLength)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, api.Stored{SHA256: digest, Size: n})
	return nil
}

func (s *server) getHistory(w http.ResponseWriter, r *http.Request) error {
	q, err := api.ParseHistoryQuery(r.URL.Query())
	if err != nil {
		return err
	}
	h, err := s.agent.History(q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// putRun records how a run ended; the client calls it when the run ends.
func (s *server) putRun(w http.ResponseWriter, r *http.Request) error {
	var end api.RunEnd
	if err := readJSON(w, r, &end); err != nil {
		return err
	}
	run, err := s.agent.EndRun(httprouter.ParamsFromContext(r.Context()).ByName("run"), end)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// deleteLease ends a run's hold on a service; the client calls it when the
// run ends.
func (s *server) deleteLease(w http.ResponseWriter, r *http.Request) error {
	p := httprouter.ParamsFromContext(r.Context())
	released, err := s.agent.ReleaseLease(p.ByName("service"), p.ByName("run"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Released{Released: released})
	return nil
}

// logRequests logs each request at debug level.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		if !strings.HasPrefix(r.URL.Path, api.RouteHealthz) {
			log.Debug("request", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
		}
	})
}
