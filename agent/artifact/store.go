package artifact

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"

	"github.com/baepo/baepo/sdk/proc"
)

// Errors a Store returns, wrapped with what was being done to which
// artifact; test them with errors.Is.
var (
	ErrInvalidDigest  = errors.New("not a sha256 digest (want 64 lower-case hex characters)")
	ErrNotFound       = errors.New("artifact not found")
	ErrTooLarge       = errors.New("artifact exceeds the size limit")
	ErrDigestMismatch = errors.New("artifact digest mismatch")
	ErrNotZip         = errors.New("not a zip archive: a WAR or JAR is a zip; check the build produced it")
	ErrCorrupt        = errors.New("stored artifact is not what its name says")
)

// fileMode is the mode of a stored artifact: drivers running as another
// user may read it; nobody writes it.
const fileMode = 0o644

// copyBuf is the size of the buffer Put copies through.
const copyBuf = 256 << 10

// ValidDigest reports whether s is a sha256 digest in lower-case hex.
func ValidDigest(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Store keeps artifacts under dir/sha256/<digest>; dir/tmp holds files
// being written. It is safe for concurrent use, also by several Puts of
// the same digest.
type Store struct {
	dir string // absolute
}

// Open opens the store in dir, creating dir, dir/sha256 and dir/tmp, and
// removes the temp files a crash left behind. It refuses a store whose
// dir, sha256 or tmp is a symlink: the store deletes what it finds there,
// and must not follow a link to do it.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", dir, err)
	}
	s := &Store{dir: abs}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", abs, err)
	}
	for _, d := range []string{s.dir, s.objects(), s.tmp()} {
		if err := proc.OwnDir(d); err != nil {
			return nil, fmt.Errorf("open artifact store: %w", err)
		}
	}
	leftovers, err := os.ReadDir(s.tmp())
	if err != nil {
		return nil, fmt.Errorf("open artifact store %s: %w", abs, err)
	}
	for _, e := range leftovers {
		if err := os.RemoveAll(filepath.Join(s.tmp(), e.Name())); err != nil {
			return nil, fmt.Errorf("open artifact store %s: remove leftover temp file: %w", abs, err)
		}
	}
	return s, nil
}

func (s *Store) objects() string             { return filepath.Join(s.dir, "sha256") }
func (s *Store) tmp() string                 { return filepath.Join(s.dir, "tmp") }
func (s *Store) object(digest string) string { return filepath.Join(s.objects(), digest) }

// Has reports whether the store holds digest, and its size. Only a
// regular file counts: an object that is a symlink or anything else is
// not held, so that the next Put of digest replaces it.
func (s *Store) Has(digest string) (size int64, ok bool, err error) {
	if !ValidDigest(digest) {
		return 0, false, fmt.Errorf("look up artifact %q: %w", digest, ErrInvalidDigest)
	}
	fi, err := os.Lstat(s.object(digest))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up artifact sha256:%s: %w", digest, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, false, nil
	}
	return fi.Size(), true, nil
}

// Verify checks that the object of digest is what its name says — a
// regular file, not a symlink, whose sha256 is digest — and returns its
// path. The agent verifies an object before it installs it, so that a
// link or a file altered in the store never reaches an app server. The
// error wraps ErrNotFound when the store does not hold digest, and
// ErrCorrupt, naming the object and the fix, when it is not what it says.
func (s *Store) Verify(ctx context.Context, digest string) (string, error) {
	if !ValidDigest(digest) {
		return "", fmt.Errorf("verify artifact %q: %w", digest, ErrInvalidDigest)
	}
	p := s.object(digest)
	corrupt := func(why string) error {
		return fmt.Errorf("artifact sha256:%s: %w: %s %s; remove it and upload the artifact again (baepo uploads what the agent lacks)", digest, ErrCorrupt, p, why)
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("artifact sha256:%s: %w", digest, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("verify artifact sha256:%s: %w", digest, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(p)
		return "", corrupt("is a symlink to " + target + ", not a file")
	}
	if !fi.Mode().IsRegular() {
		return "", corrupt("is not a regular file")
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", fmt.Errorf("verify artifact sha256:%s: %w", digest, err)
	}
	defer f.Close()
	if ofi, err := f.Stat(); err != nil || !os.SameFile(fi, ofi) {
		return "", corrupt("changed while it was verified")
	}
	h := sha256.New()
	if _, err := copyCtx(ctx, h, f); err != nil {
		return "", fmt.Errorf("verify artifact sha256:%s: %w", digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return "", corrupt("holds content whose sha256 is " + got)
	}
	return p, nil
}

// Path returns the absolute path of the file of digest; the error wraps
// ErrNotFound when the store does not hold it. The file must not be
// modified: hard-link or copy it.
func (s *Store) Path(digest string) (string, error) {
	_, ok, err := s.Has(digest)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("artifact sha256:%s: %w", digest, ErrNotFound)
	}
	return s.object(digest), nil
}

// Put stores what r yields under digest and returns its size. It streams
// into a temp file while hashing, refuses more than limit bytes (limit <= 0:
// no limit), a body whose sha256 is not digest and a file that is not a
// zip, then syncs the file, renames it into place and syncs the directory.
// Nothing is left behind on error. If the store already holds digest, Put
// drains r (up to limit) so the sender can finish, and returns the stored
// size. Cancelling ctx stops the copy.
func (s *Store) Put(ctx context.Context, digest string, r io.Reader, limit int64) (int64, error) {
	size, ok, err := s.Has(digest)
	if err != nil {
		return 0, fmt.Errorf("store artifact: %w", err)
	}
	if ok {
		_, _ = copyCtx(ctx, io.Discard, limitReader(r, limit))
		return size, nil
	}
	return s.write(ctx, digest, r, limit)
}

// Fetch downloads url (http or https) into the store under digest, through
// the same checks as Put, and returns the artifact's size. It downloads
// nothing if the store already holds digest. A nil client means
// http.DefaultClient; the request carries ctx.
func (s *Store) Fetch(ctx context.Context, client *http.Client, rawURL, digest string, limit int64) (int64, error) {
	shown := redact(rawURL)
	size, ok, err := s.Has(digest)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", shown, err)
	}
	if ok {
		return size, nil
	}
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", shown, err)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return 0, fmt.Errorf("fetch %s: scheme %q: want http or https", shown, req.URL.Scheme)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetch artifact: %w", err) // *url.Error names the URL, without password
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return 0, fmt.Errorf("fetch %s: server answered %s", shown, resp.Status)
	}
	if limit > 0 && resp.ContentLength > limit {
		return 0, fmt.Errorf("fetch %s: %w: %d bytes is over the limit of %d bytes", shown, ErrTooLarge, resp.ContentLength, limit)
	}
	n, err := s.write(ctx, digest, resp.Body, limit)
	if err != nil {
		return 0, fmt.Errorf("fetch %s: %w", shown, err)
	}
	return n, nil
}

// write streams r into a temp file, verifies it and renames it into place.
// If another writer put the same digest meanwhile, the rename replaces an
// identical file.
func (s *Store) write(ctx context.Context, digest string, r io.Reader, limit int64) (n int64, err error) {
	f, err := os.CreateTemp(s.tmp(), digest[:12]+"-*.part")
	if err != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: %w", digest, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := newAsyncHash()
	n, err = copyCtx(ctx, io.MultiWriter(f, h), limitReader(r, limit))
	sum := h.Sum()
	if err != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: receive body: %w", digest, err)
	}
	if limit > 0 && n > limit {
		return 0, fmt.Errorf("store artifact sha256:%s: %w: more than %d bytes", digest, ErrTooLarge, limit)
	}
	if got := hex.EncodeToString(sum); got != digest {
		return 0, fmt.Errorf("store artifact: %w: the body's sha256 is %s, the request names %s", ErrDigestMismatch, got, digest)
	}
	if _, zerr := zip.NewReader(f, n); zerr != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: %w (%v)", digest, ErrNotZip, zerr)
	}
	if err = f.Chmod(fileMode); err != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: %w", digest, err)
	}
	if err = f.Sync(); err != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: sync: %w", digest, err)
	}
	if err = f.Close(); err != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: %w", digest, err)
	}
	if err = os.Rename(f.Name(), s.object(digest)); err != nil {
		return 0, fmt.Errorf("store artifact sha256:%s: %w", digest, err)
	}
	// The file is in place: from here an error must not remove the temp
	// name, which may already belong to nobody.
	if serr := proc.SyncDir(s.objects()); serr != nil {
		return n, fmt.Errorf("store artifact sha256:%s: sync directory: %w", digest, serr)
	}
	return n, nil
}

// limitReader lets one byte past limit through, so the caller can tell
// "exactly limit" from "over limit".
func limitReader(r io.Reader, limit int64) io.Reader {
	if limit <= 0 {
		return r
	}
	return io.LimitReader(r, limit+1)
}

// copyCtx is io.Copy that checks ctx between reads.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, copyBuf)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// redact hides the password of a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// asyncHash hashes what is written to it in a goroutine of its own, so the
// sha256 of an upload is computed while the file is written, not after.
type asyncHash struct {
	h    hash.Hash
	ch   chan []byte
	done chan struct{}
	free chan []byte
}

func newAsyncHash() *asyncHash {
	a := &asyncHash{h: sha256.New(), ch: make(chan []byte, 8), done: make(chan struct{}), free: make(chan []byte, 9)}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			a.h.Write(b)
			select {
			case a.free <- b:
			default:
			}
		}
	}()
	return a
}

// Write queues a copy of p for hashing.
func (a *asyncHash) Write(p []byte) (int, error) {
	var b []byte
	select {
	case b = <-a.free:
	default:
	}
	b = append(b[:0], p...)
	a.ch <- b
	return len(p), nil
}

// Sum waits until everything written is hashed and returns the digest. No
// Write may follow it.
func (a *asyncHash) Sum() []byte {
	close(a.ch)
	<-a.done
	return a.h.Sum(nil)
}
