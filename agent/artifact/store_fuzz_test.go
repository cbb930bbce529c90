package artifact_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baepo/baepo/agent/artifact"
)

// FuzzStore looks up and stores any digest with any body. A digest that
// is not 64 lower-case hex characters is refused before the disk is
// touched; a body is stored only under its own sha256 and only if it is a
// zip; a stored path never leaves the store; and whatever happened, the
// temp dir is empty and every stored object is named by its digest.
func FuzzStore(f *testing.F) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.html")
	w.Write([]byte("hello"))
	zw.Close()
	war := buf.Bytes()

	for _, seed := range []struct {
		how    uint8 // 0: the digest as given, 1: the body's digest, 2: the body's digest in upper case
		digest string
		body   []byte
	}{
		{1, "", war},
		{1, "", []byte("not a zip")},
		{2, "", war},
		{0, strings.Repeat("0", 64), war},
		{0, "../../../../etc/passwd", nil},
		{0, strings.Repeat("a", 63) + "/", nil},
		{0, strings.Repeat("a", 62) + "..", nil},
		{0, strings.Repeat("g", 64), nil},
		{0, "", nil},
		{0, strings.Repeat("ab", 33), war},
	} {
		f.Add(seed.how, seed.digest, seed.body)
	}
	dir := filepath.Join(f.TempDir(), "artifacts")
	s, err := artifact.Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, how uint8, digest string, body []byte) {
		sum := sha256.Sum256(body)
		switch how % 3 {
		case 1:
			digest = hex.EncodeToString(sum[:])
		case 2:
			digest = strings.ToUpper(hex.EncodeToString(sum[:]))
		}
		valid := artifact.ValidDigest(digest)
		if valid != (len(digest) == 64 && strings.Trim(digest, "0123456789abcdef") == "") {
			t.Fatalf("ValidDigest(%q) = %v", digest, valid)
		}

		_, _, herr := s.Has(digest)
		n, perr := s.Put(context.Background(), digest, bytes.NewReader(body), 1<<20)
		path, lerr := s.Path(digest)
		switch {
		case !valid:
			for _, err := range []error{herr, perr, lerr} {
				if !errors.Is(err, artifact.ErrInvalidDigest) {
					t.Fatalf("digest %q: %v, want ErrInvalidDigest", digest, err)
				}
			}
		case herr != nil:
			t.Fatalf("Has(%q): %v", digest, herr)
		case perr == nil:
			if hex.EncodeToString(sum[:]) != digest || n != int64(len(body)) {
				t.Fatalf("Put(%q) stored %d bytes of a body of sha256 %x, %d bytes", digest, n, sum, len(body))
			}
			if _, err := zip.NewReader(bytes.NewReader(body), int64(len(body))); err != nil {
				t.Fatalf("Put(%q) stored a body that is not a zip: %v", digest, err)
			}
			if lerr != nil {
				t.Fatalf("Path(%q) after Put: %v", digest, lerr)
			}
			rel, err := filepath.Rel(dir, path)
			if err != nil || rel != filepath.Join("sha256", digest) {
				t.Fatalf("Path(%q) = %s: not dir/sha256/<digest>", digest, path)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("Path(%q) holds something else than the body (%v)", digest, err)
			}
		case hex.EncodeToString(sum[:]) != digest:
			if !errors.Is(perr, artifact.ErrDigestMismatch) {
				t.Fatalf("Put(%q) of a body of sha256 %x: %v, want ErrDigestMismatch", digest, sum, perr)
			}
		default:
			if !errors.Is(perr, artifact.ErrNotZip) {
				t.Fatalf("Put(%q) of its own body: %v, want ErrNotZip", digest, perr)
			}
		}

		if left, err := os.ReadDir(filepath.Join(dir, "tmp")); err != nil || len(left) > 0 {
			t.Fatalf("temp dir after Put(%q): %v, %v", digest, left, err)
		}
		objects, err := os.ReadDir(filepath.Join(dir, "sha256"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range objects {
			data, err := os.ReadFile(filepath.Join(dir, "sha256", e.Name()))
			sum := sha256.Sum256(data)
			if err != nil || !e.Type().IsRegular() || hex.EncodeToString(sum[:]) != e.Name() {
				t.Fatalf("object %s: not a regular file holding what its name says (%v)", e.Name(), err)
			}
		}
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 2 {
			t.Fatalf("store dir holds %v (%v), want sha256 and tmp", entries, err)
		}
	})
}
