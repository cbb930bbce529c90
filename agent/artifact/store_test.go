package artifact

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// makeZip returns a zip holding one stored (uncompressed) entry of n
// random bytes, and its digest.
func makeZip(tb testing.TB, n int) ([]byte, string) {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "WEB-INF/lib/app.jar", Method: zip.Store})
	if err != nil {
		tb.Fatal(err)
	}
	data := make([]byte, n)
	rng := rand.NewChaCha8([32]byte{byte(n)})
	_, _ = rng.Read(data)
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), digestOf(buf.Bytes())
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// assertClean fails if the store's temp dir holds anything.
func assertClean(t *testing.T, s *Store) {
	t.Helper()
	left, err := os.ReadDir(s.tmp())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range left {
		t.Errorf("left behind in tmp: %s", e.Name())
	}
}

func TestValidDigest(t *testing.T) {
	good := strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		in   string
		want bool
	}{
		{good, true},
		{strings.Repeat("f", 64), true},
		{"", false},
		{good[:63], false},
		{good + "0", false},
		{strings.ToUpper(good), false},
		{strings.Repeat("g", 64), false},
		{"../" + good[3:], false},
	}
	for _, tt := range tests {
		if got := ValidDigest(tt.in); got != tt.want {
			t.Errorf("ValidDigest(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestOpenRemovesLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"abc-1.part", "abc-2.part"} {
		if err := os.WriteFile(filepath.Join(s.tmp(), name), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	zipData, digest := makeZip(t, 100)
	if _, err := s.Put(context.Background(), digest, bytes.NewReader(zipData), 0); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertClean(t, s)
	if _, ok, err := s.Has(digest); !ok || err != nil {
		t.Errorf("after reopen, Has(stored) = %v, %v; want true, nil", ok, err)
	}
}

func TestPut(t *testing.T) {
	zipData, digest := makeZip(t, 64<<10)
	notZip := []byte("<html>502 Bad Gateway</html>")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		digest  string
		body    []byte
		limit   int64
		wantErr error  // nil: success
		wantMsg string // substring of the error
	}{
		{name: "ok", digest: digest, body: zipData, limit: 1 << 20},
		{name: "no limit", digest: digest, body: zipData},
		{name: "exactly the limit", digest: digest, body: zipData, limit: int64(len(zipData))},
		{name: "one byte over", digest: digest, body: zipData, limit: int64(len(zipData)) - 1, wantErr: ErrTooLarge},
		{name: "digest mismatch", digest: strings.Repeat("a", 64), body: zipData, wantErr: ErrDigestMismatch,
			wantMsg: "the body's sha256 is " + digest + ", the request names " + strings.Repeat("a", 64)},
		{name: "not a zip", digest: digestOf(notZip), body: notZip, wantErr: ErrNotZip, wantMsg: "check the build produced it"},
		{name: "empty body", digest: digestOf(nil), body: nil, wantErr: ErrNotZip},
		{name: "bad digest", digest: "../../etc/passwd", body: zipData, wantErr: ErrInvalidDigest},
		{name: "cancelled", ctx: cancelled, digest: digest, body: zipData, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			n, err := s.Put(ctx, tt.digest, bytes.NewReader(tt.body), tt.limit)
			assertClean(t, s)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Put: err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("Put: err = %q, want it to contain %q", err, tt.wantMsg)
				}
				if ValidDigest(tt.digest) {
					if _, ok, _ := s.Has(tt.digest); ok {
						t.Error("a failed Put left the artifact in the store")
					}
				}
				objs, _ := os.ReadDir(s.objects())
				if len(objs) != 0 {
					t.Errorf("a failed Put left %d objects", len(objs))
				}
				return
			}
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if n != int64(len(tt.body)) {
				t.Errorf("Put = %d bytes, want %d", n, len(tt.body))
			}
			path, err := s.Path(tt.digest)
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, tt.body) {
				t.Errorf("stored file differs from the body (err %v)", err)
			}
			if !filepath.IsAbs(path) {
				t.Errorf("Path = %q, want an absolute path", path)
			}
			if size, ok, err := s.Has(tt.digest); size != n || !ok || err != nil {
				t.Errorf("Has = %d, %v, %v; want %d, true, nil", size, ok, err, n)
			}
		})
	}
}

// countingReader counts what was read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestPutExistingDrainsBody(t *testing.T) {
	s := openStore(t)
	zipData, digest := makeZip(t, 1000)
	ctx := context.Background()
	if _, err := s.Put(ctx, digest, bytes.NewReader(zipData), 0); err != nil {
		t.Fatal(err)
	}
	// A second body is not even checked: the digest names what is stored.
	body := &countingReader{r: strings.NewReader(strings.Repeat("x", 5000))}
	n, err := s.Put(ctx, digest, body, 0)
	if err != nil || n != int64(len(zipData)) {
		t.Fatalf("Put(existing) = %d, %v; want %d, nil", n, err, len(zipData))
	}
	if body.n != 5000 {
		t.Errorf("Put(existing) read %d bytes of the body, want all 5000", body.n)
	}
	assertClean(t, s)
}

func TestPutConcurrentSameDigest(t *testing.T) {
	s := openStore(t)
	zipData, digest := makeZip(t, 256<<10)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			var n int64
			n, errs[i] = s.Put(context.Background(), digest, bytes.NewReader(zipData), 0)
			if errs[i] == nil && n != int64(len(zipData)) {
				errs[i] = fmt.Errorf("size %d, want %d", n, len(zipData))
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put #%d: %v", i, err)
		}
	}
	got, err := os.ReadFile(s.object(digest))
	if err != nil || !bytes.Equal(got, zipData) {
		t.Errorf("stored file differs (err %v)", err)
	}
	assertClean(t, s)
}

// failingReader yields some bytes, then an error: a client that hung up.
type failingReader struct{ sent bool }

func (f *failingReader) Read(p []byte) (int, error) {
	if !f.sent {
		f.sent = true
		return copy(p, "PK\x03\x04 partial"), nil
	}
	return 0, io.ErrUnexpectedEOF
}

func TestPutBrokenBody(t *testing.T) {
	s := openStore(t)
	_, err := s.Put(context.Background(), strings.Repeat("b", 64), &failingReader{}, 0)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Put = %v, want an error wrapping io.ErrUnexpectedEOF", err)
	}
	assertClean(t, s)
}

func TestPath(t *testing.T) {
	s := openStore(t)
	_, err := s.Path(strings.Repeat("c", 64))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), strings.Repeat("c", 64)) {
		t.Errorf("Path(absent) = %v, want ErrNotFound naming the digest", err)
	}
	if _, err := s.Path("nope"); !errors.Is(err, ErrInvalidDigest) {
		t.Errorf("Path(bad) = %v, want ErrInvalidDigest", err)
	}
}

func TestFetch(t *testing.T) {
	zipData, digest := makeZip(t, 32<<10)
	var requests sync.Map // path → count
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, _ := requests.LoadOrStore(r.URL.Path, new(int))
		*v.(*int)++
		switch r.URL.Path {
		case "/app.war":
			_, _ = w.Write(zipData)
		case "/missing.war":
			http.Error(w, "no such artifact", http.StatusNotFound)
		case "/big.war":
			w.Header().Set("Content-Length", "1000000000")
			_, _ = w.Write(zipData)
		case "/login.html":
			_, _ = w.Write([]byte("<html>please log in</html>"))
		}
	}))
	defer srv.Close()
	userURL := strings.Replace(srv.URL, "http://", "http://deploy:s3cret@", 1)
	tests := []struct {
		name    string
		url     string
		digest  string
		limit   int64
		wantErr error
		wantMsg string
	}{
		{name: "ok", url: srv.URL + "/app.war", digest: digest},
		{name: "with credentials", url: userURL + "/app.war", digest: digest},
		{name: "404", url: userURL + "/missing.war", digest: digest, wantMsg: "404 Not Found"},
		{name: "too large", url: srv.URL + "/big.war", digest: digest, limit: 1 << 20, wantErr: ErrTooLarge},
		{name: "mismatch", url: srv.URL + "/app.war", digest: strings.Repeat("d", 64), wantErr: ErrDigestMismatch},
		{name: "html page", url: srv.URL + "/login.html", digest: digestOf([]byte("<html>please log in</html>")), wantErr: ErrNotZip},
		{name: "ftp", url: "ftp://example.com/app.war", digest: digest, wantMsg: `scheme "ftp"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t)
			n, err := s.Fetch(context.Background(), srv.Client(), tt.url, tt.digest, tt.limit)
			assertClean(t, s)
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %v", err)
			}
			if tt.wantErr == nil && tt.wantMsg == "" {
				if err != nil || n != int64(len(zipData)) {
					t.Fatalf("Fetch = %d, %v; want %d, nil", n, err, len(zipData))
				}
				if _, ok, _ := s.Has(tt.digest); !ok {
					t.Error("fetched artifact is not in the store")
				}
				return
			}
			if err == nil {
				t.Fatal("Fetch succeeded, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Fetch: err = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Fetch: err = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}

	t.Run("present: no download", func(t *testing.T) {
		s := openStore(t)
		if _, err := s.Put(context.Background(), digest, bytes.NewReader(zipData), 0); err != nil {
			t.Fatal(err)
		}
		n, err := s.Fetch(context.Background(), nil, srv.URL+"/never.war", digest, 0)
		if err != nil || n != int64(len(zipData)) {
			t.Fatalf("Fetch = %d, %v", n, err)
		}
		if _, asked := requests.Load("/never.war"); asked {
			t.Error("Fetch downloaded an artifact the store already holds")
		}
	})
}

func TestFetchCancelled(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000")
		_, _ = w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done() // a stalled repository
	}))
	defer srv.Close()
	s := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := s.Fetch(ctx, srv.Client(), srv.URL+"/slow.war", strings.Repeat("e", 64), 0)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch = %v, want context.Canceled", err)
	}
	assertClean(t, s)
}

func BenchmarkPut(b *testing.B) {
	zipData, digest := makeZip(b, 16<<20)
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(zipData)))
	for b.Loop() {
		if _, err := s.Put(ctx, digest, bytes.NewReader(zipData), 0); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(s.object(digest)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
