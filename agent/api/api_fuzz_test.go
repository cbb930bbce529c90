package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParseHistoryQuery reads any query of GET /v1/history. A query it
// accepts has no negative limit, and writes (HistoryPath, as the client
// does) to a query that reads back the same: parse → format → parse is
// stable. A refused one is a bad request naming the key.
func FuzzParseHistoryQuery(f *testing.F) {
	for _, s := range []string{"", "service=A&instance=a1&step=install&limit=3", "build=app%2Fmain%237",
		"since=2026-12-01T10:00:00Z", "since=2026-12-01T10:00:00.123456789%2B09:00", "since=0000-01-01T00:00:00Z",
		"limit=0", "limit=-1", "limit=99999999999999999999", "limit=+5", "since=yesterday", "service=&service=B",
		"%zz", "a=1;b=2", "service=%00%2F..%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseHistoryQuery(v)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeBadRequest || !(strings.HasPrefix(ae.Message, "limit: ") || strings.HasPrefix(ae.Message, "since: ")) {
				t.Fatalf("%q: error %#v, want a bad request naming limit or since", raw, err)
			}
			return
		}
		if q.Limit < 0 {
			t.Fatalf("%q: limit %d", raw, q.Limit)
		}
		q1 := reparse(t, q)
		q2 := reparse(t, q1)
		if !sameQuery(q1, q2) {
			t.Fatalf("%q: parse → format → parse is not stable: %+v, then %+v", raw, q1, q2)
		}
		// Formatting keeps everything but the fractions of a second.
		want := q
		want.Since = q.Since.Truncate(time.Second)
		if !sameQuery(q1, want) {
			t.Fatalf("%q: read %+v, written and read back %+v", raw, q, q1)
		}
	})
}

func reparse(t *testing.T, q HistoryQuery) HistoryQuery {
	t.Helper()
	p := HistoryPath(q)
	u, err := url.Parse(p)
	if err != nil || u.Path != RouteHistory {
		t.Fatalf("HistoryPath(%+v) = %q: not a history URL (%v)", q, p, err)
	}
	got, err := ParseHistoryQuery(u.Query())
	if err != nil {
		t.Fatalf("HistoryPath(%+v) = %q, which does not parse: %v", q, p, err)
	}
	return got
}

func sameQuery(a, b HistoryQuery) bool {
	return a.Service == b.Service && a.Instance == b.Instance && a.Step == b.Step && a.Build == b.Build &&
		a.Limit == b.Limit && a.Since.Equal(b.Since)
}

// FuzzPaths builds the paths of the API from any names. Each name comes
// back from its path segment as it was, and no name adds a segment: a
// name holding "/" or ".." stays inside its segment.
func FuzzPaths(f *testing.F) {
	f.Add("A", "a1", "stop")
	f.Add("..", "../..", "%2e%2e")
	f.Add("A b", "a/1", "x?y#z")
	f.Add("", "", "")
	f.Add("\x00", "é", "a;b")
	f.Fuzz(func(t *testing.T, service, instance, step string) {
		for _, tt := range []struct {
			path, route string
			values      []string
		}{
			{StepPath(service, instance, step), RouteStep, []string{service, instance, step}},
			{InstancePath(service, instance), RouteInstance, []string{service, instance}},
			{LeasePath(service, step), RouteLease, []string{service, step}},
			{RunPath(step), RouteRun, []string{step}},
			{ArtifactPath(step), RouteArtifact, []string{step}},
		} {
			u, err := url.Parse(tt.path)
			if err != nil || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("%q: not a plain path: %v", tt.path, err)
			}
			segs, want := strings.Split(u.EscapedPath(), "/"), strings.Split(tt.route, "/")
			if len(segs) != len(want) {
				t.Fatalf("%q has %d segments, %s has %d", tt.path, len(segs), tt.route, len(want))
			}
			var got []string
			for i, s := range segs {
				if !strings.HasPrefix(want[i], ":") {
					if s != want[i] {
						t.Fatalf("%q: segment %d is %q, want %q", tt.path, i, s, want[i])
					}
					continue
				}
				if s == "." || s == ".." {
					t.Fatalf("%q: segment %d is %q", tt.path, i, s)
				}
				v, err := url.PathUnescape(s)
				if err != nil {
					t.Fatalf("%q: segment %q: %v", tt.path, s, err)
				}
				got = append(got, v)
			}
			if !reflect.DeepEqual(got, tt.values) {
				t.Fatalf("%q: read back %q, want %q", tt.path, got, tt.values)
			}
		}
	})
}

// FuzzStepRequest decodes any step request body as the agent does (unknown
// fields refused). What decodes encodes and decodes again to the same
// request (empty args and none being the same).
func FuzzStepRequest(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"args":{"artifact":{"sha256":"` + strings.Repeat("ab", 32) + `","name":"app.war"}},"build":{"tag":"jenkins-app-7"},"run":"r1","user":"u"}`,
		`{"args":{"timeout":1e300,"lines":-1,"x":[1,"a",null,{"b":false}]}}`, `{"args":null}`, `{"bogus":1}`, `[]`, `null`,
		`{"args":{"a":"\ud800\u0000"}}`, `{"build":{"number":7}}`, `{"args":{"n":12345678901234567890123}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeStrict(body)
		if err != nil {
			return
		}
		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("%s decoded to %#v, which does not encode: %v", body, req, err)
		}
		again, err := decodeStrict(enc)
		if err != nil {
			t.Fatalf("%s: re-encoded as %s, which does not decode: %v", body, enc, err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("%s: decoded %#v, re-encoded and decoded %#v", body, req, again)
		}
	})
}

func decodeStrict(body []byte) (StepRequest, error) {
	var req StepRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if len(req.Args) == 0 {
		req.Args = nil // no args: omitted when encoded
	}
	return req, err
}

// FuzzReadStep reads any step response stream as the client does. It
// returns the first result or error event it meets and hands every
// progress event before it to onEvent; a stream without either is cut
// (ErrStreamCut), never a success.
func FuzzReadStep(f *testing.F) {
	for _, s := range []string{
		"", "{}\n", `{"msg":"stopping"}` + "\n" + `{"result":{"message":"ok","duration_ns":5}}` + "\n",
		`{"error":{"error":"boom","code":"step_failed"}}`, `{"result":null,"error":null}`, "not json\n",
		`{"msg":"a"}` + "\n\n" + `{"msg":"b"}`, `{"time":"yesterday"}`, `{"result":{},"error":{"code":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		var progress int
		res, err := ReadStep(bytes.NewReader(stream), func(Event) { progress++ })
		var ae *Error
		switch {
		case err == nil:
			if !bytes.Contains(stream, []byte(`"result"`)) && !bytes.Contains(stream, []byte(`"Result"`)) && !bytes.Contains(bytes.ToLower(stream), []byte(`"result"`)) {
				t.Fatalf("%q: a result %+v from a stream without one", stream, res)
			}
		case errors.As(err, &ae):
			if !bytes.Contains(bytes.ToLower(stream), []byte(`"error"`)) {
				t.Fatalf("%q: an agent error %v from a stream without one", stream, err)
			}
		case errors.Is(err, ErrStreamCut), strings.HasPrefix(err.Error(), "bad step event: "):
		default:
			t.Fatalf("%q: unexpected error %v", stream, err)
		}
		if lines := bytes.Count(stream, []byte("\n")) + 1; progress > lines {
			t.Fatalf("%q: %d progress events from %d lines", stream, progress, lines)
		}
	})
}
