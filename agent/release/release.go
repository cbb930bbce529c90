package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/baepo/baepo/sdk/proc"
)

// Errors the Releases return, wrapped with what was being done.
var (
	ErrNoPrevious = errors.New("no previous release to roll back to")
	ErrNotFound   = errors.New("no such release")
)

// Names inside an instance directory.
const (
	currentLink  = "current"
	previousLink = "previous"
	releasesDir  = "releases"
	metaFile     = "meta.json"

	linkTmpPrefix   = ".link-"  // in dir: a symlink about to replace current or previous
	intentTmpPrefix = ".baepo-" // in dir: an intent being written (proc.WriteFileAtomic)
	stagePrefix     = ".stage-" // in releases/: a release being staged
	trashPrefix     = ".trash-" // in releases/: a release being pruned

	idTime = "20060102T150405.000Z" // the time part of an id, UTC
)

// idRE matches a release id: staging time, the first 8 hex of the digest,
// and a counter in the unlikely case the rest collides.
var idRE = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8}(-[0-9]+)?$`)

// Meta is what a release records of itself in meta.json.
type Meta struct {
	SHA256 string    `json:"sha256"`         // the artifact's digest
	Name   string    `json:"name"`           // the artifact's name as the user gave it
	Time   time.Time `json:"time"`           // when it was staged
	Build  Build     `json:"build"`          // the CI build that asked for it
	User   string    `json:"user,omitempty"` // who asked for it
}

// Build identifies the CI build that staged a release.
type Build struct {
	Tag    string `json:"tag,omitempty"`
	URL    string `json:"url,omitempty"`
	Job    string `json:"job,omitempty"`
	Number string `json:"number,omitempty"`
}

// metaJSON is meta.json: Meta plus the artifact's file name in the release
// directory, so a later change of the name sanitiser cannot lose it.
type metaJSON struct {
	Meta
	File string `json:"file"`
}

// Release is one staged release.
type Release struct {
	ID       string
	Dir      string // absolute path of releases/<id>
	Artifact string // absolute path of the artifact inside Dir
	Meta     Meta
}

// Releases are the releases of one instance, under one directory.
type Releases struct {
	dir string // absolute

	mu   sync.Mutex
	last time.Time // time part of the newest id; new ids sort after it
}

// linkFile is os.Link; tests replace it to exercise the copy fallback.
var linkFile = os.Link

// Open opens the releases of the instance directory dir, creating
// dir/releases, and removes what a crash left half-done: temp symlinks,
// half-staged and half-pruned release directories.
func Open(dir string) (*Releases, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open releases in %s: %w", dir, err)
	}
	r := &Releases{dir: abs}
	// Open and Prune delete what they find in dir and releases/: neither
	// may be a link to somewhere else.
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("open releases in %s: %w", abs, err)
	}
	for _, d := range []string{abs, r.root()} {
		if err := proc.OwnDir(d); err != nil {
			return nil, fmt.Errorf("open releases: %w", err)
		}
	}
	if err := removeLeftovers(abs, linkTmpPrefix, intentTmpPrefix); err != nil {
		return nil, fmt.Errorf("open releases in %s: %w", abs, err)
	}
	if err := removeLeftovers(r.root(), stagePrefix, trashPrefix); err != nil {
		return nil, fmt.Errorf("open releases in %s: %w", abs, err)
	}
	ids, err := r.ids()
	if err != nil {
		return nil, fmt.Errorf("open releases in %s: %w", abs, err)
	}
	for _, id := range ids {
		if t, err := time.Parse(idTime, id[:len(idTime)]); err == nil && t.After(r.last) {
			r.last = t
		}
	}
	return r, nil
}

// removeLeftovers removes the entries of dir whose names start with one of
// prefixes, and syncs dir if it removed any.
func removeLeftovers(dir string, prefixes ...string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("remove leftover of a crash: %w", err)
				}
				removed = true
			}
		}
	}
	if removed {
		return proc.SyncDir(dir)
	}
	return nil
}

func (r *Releases) root() string { return filepath.Join(r.dir, releasesDir) }

// Stage makes a new release of the artifact at artifactPath: a directory
// holding the artifact, hard-linked (copied when a link is impossible, e.g.
// across devices) under meta.Name reduced to a safe base name, and
// meta.json. The release is built in a hidden directory and renamed into
// place, so a stage that fails or crashes leaves no release behind. Stage
// does not make the release current: see Activate.
func (r *Releases) Stage(artifactPath string, meta Meta) (Release, error) {
	if !validDigest(meta.SHA256) {
		return Release{}, fmt.Errorf("stage release of %s: digest %q is not 64 lower-case hex characters", artifactPath, meta.SHA256)
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	now := time.Now().UTC()
	if meta.Time.IsZero() {
		meta.Time = now
	}
	// Ids sort in staging order even if the clock steps back or two stages
	// fall in one millisecond.
	t := now.Truncate(time.Millisecond)
	if !t.After(r.last) {
		t = r.last.Add(time.Millisecond)
	}
	base := t.Format(idTime) + "-" + meta.SHA256[:8]
	id := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(r.root(), id)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		id = fmt.Sprintf("%s-%d", base, n)
	}

	stage, err := os.MkdirTemp(r.root(), stagePrefix+"*")
	if err != nil {
		return Release{}, fmt.Errorf("stage release %s: %w", id, err)
	}
	staged := false
	defer func() {
		if !staged {
			os.RemoveAll(stage)
		}
	}()
	file := fileName(meta.Name)
	if err := placeArtifact(artifactPath, filepath.Join(stage, file)); err != nil {
		return Release{}, fmt.Errorf("stage release %s: %w", id, err)
	}
	// A hard link of a symlink is a symlink: what a release holds must be
	// a file of its own, never a way to another one.
	if fi, err := os.Lstat(filepath.Join(stage, file)); err != nil || !fi.Mode().IsRegular() {
		return Release{}, fmt.Errorf("stage release %s: %s is not a regular file: give the path of the artifact itself", id, artifactPath)
	}
	data, err := json.MarshalIndent(metaJSON{Meta: meta, File: file}, "", "  ")
	if err != nil {
		return Release{}, fmt.Errorf("stage release %s: encode %s: %w", id, metaFile, err)
	}
	if err := proc.WriteFileAtomic(filepath.Join(stage, metaFile), bytes.NewReader(append(data, '\n')), 0o644); err != nil {
		return Release{}, fmt.Errorf("stage release %s: write %s: %w", id, metaFile, err)
	}
	if err := os.Chmod(stage, 0o755); err != nil { // MkdirTemp made it 0700
		return Release{}, fmt.Errorf("stage release %s: %w", id, err)
	}
	dir := filepath.Join(r.root(), id)
	if err := os.Rename(stage, dir); err != nil {
		return Release{}, fmt.Errorf("stage release %s: %w", id, err)
	}
	staged = true
	if err := proc.SyncDir(r.root()); err != nil {
		os.RemoveAll(dir)
		return Release{}, fmt.Errorf("stage release %s: sync %s: %w", id, r.root(), err)
	}
	r.last = t
	return Release{ID: id, Dir: dir, Artifact: filepath.Join(dir, file), Meta: meta}, nil
}

// placeArtifact hard-links src to dst, or copies it when it cannot.
func placeArtifact(src, dst string) error {
	lerr := linkFile(src, dst)
	if lerr == nil {
		return nil
	}
	if err := copyFile(src, dst); err != nil {
		return fmt.Errorf("link artifact: %v; copy it instead: %w", lerr, err)
	}
	return nil
}

// fileName reduces a user-given artifact name to a safe base name.
func fileName(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(c rune) rune {
		if c < 0x20 || c == 0x7f {
			return '_'
		}
		return c
	}, name)
	name = strings.TrimLeft(name, ".") // no "..", no hidden files that Open would mistake for leftovers
	if len(name) > 200 {
		ext := path.Ext(name)
		if len(ext) > 16 {
			ext = ""
		}
		name = "artifact" + ext
	}
	if name == "" || name == "/" || name == metaFile {
		return "artifact"
	}
	return name
}

// load reads the release id; the error wraps ErrNotFound if there is none.
// The caller holds r.mu.
func (r *Releases) load(id string) (Release, error) {
	if !idRE.MatchString(id) {
		return Release{}, fmt.Errorf("release %q: not a release id: %w", id, ErrNotFound)
	}
	dir := filepath.Join(r.root(), id)
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return Release{}, fmt.Errorf("release %s: %w", id, ErrNotFound)
		}
	}
	if err != nil {
		return Release{}, fmt.Errorf("release %s: read %s: %w", id, metaFile, err)
	}
	var m metaJSON
	if err := json.Unmarshal(data, &m); err != nil {
		return Release{}, fmt.Errorf("release %s: decode %s: %w", id, metaFile, err)
	}
	if m.File == "" || m.File != fileName(m.File) {
		m.File = fileName(m.Name)
	}
	return Release{ID: id, Dir: dir, Artifact: filepath.Join(dir, m.File), Meta: m.Meta}, nil
}

// readLink returns the id the link name points at; ok is false if there
// is no link.
func (r *Releases) readLink(name string) (id string, ok bool, err error) {
	target, err := os.Readlink(filepath.Join(r.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read link %s: %w", name, err)
	}
	id = filepath.Base(target)
	if filepath.Dir(target) != releasesDir || !idRE.MatchString(id) {
		return "", false, fmt.Errorf("link %s points at %q, not at a release in %s/", name, target, releasesDir)
	}
	return id, true, nil
}

func (r *Releases) linked(name string) (Release, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok, err := r.readLink(name)
	if err != nil || !ok {
		return Release{}, false, err
	}
	rel, err := r.load(id)
	if err != nil {
		return Release{}, false, fmt.Errorf("%s release: %w", name, err)
	}
	return rel, true, nil
}

// Verify checks that the release's artifact is what its meta.json says:
// a regular file of its own, not a symlink, whose sha256 is Meta.SHA256.
// A rollback verifies the release it returns to before the driver copies
// it, as an install verifies the store's object.
func (rel Release) Verify(ctx context.Context) error {
	bad := func(why string) error {
		return fmt.Errorf("release %s: %s %s; remove the release (rm -r %s) and deploy its artifact again", rel.ID, rel.Artifact, why, rel.Dir)
	}
	fi, err := os.Lstat(rel.Artifact)
	switch {
	case err != nil:
		return bad("cannot be read: " + err.Error())
	case fi.Mode()&fs.ModeSymlink != 0:
		to, _ := os.Readlink(rel.Artifact)
		return bad("is a symlink to " + to + ", not a file")
	case !fi.Mode().IsRegular():
		return bad("is not a regular file")
	}
	f, err := os.OpenFile(rel.Artifact, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return bad("cannot be read: " + err.Error())
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		return fmt.Errorf("verify release %s: %w", rel.ID, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != rel.Meta.SHA256 {
		return bad("holds content whose sha256 is " + got + ", not the release's " + rel.Meta.SHA256)
	}
	return nil
}

// ctxReader is a reader that stops when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Problems says what is wrong with the current and previous links, one
// sentence each with its fix; none when each is absent or points at a
// release kept here. A link that points outside releases/ (an absolute
// path, .., another directory), at a release that is gone, or at one that
// is itself a link elsewhere, is a problem: status must say so rather than
// show no release.
func (r *Releases) Problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, name := range []string{currentLink, previousLink} {
		if p := r.linkProblem(name); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// linkProblem is Problems for one link. The caller holds r.mu.
func (r *Releases) linkProblem(name string) string {
	link := filepath.Join(r.dir, name)
	fix := "; remove it (rm " + link + ") and install a release"
	fi, err := os.Lstat(link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ""
	case err != nil:
		return fmt.Sprintf("link %s cannot be read: %v", name, err)
	case fi.Mode()&fs.ModeSymlink == 0:
		return fmt.Sprintf("%s is no symlink but a %s", name, modeName(fi.Mode())) + fix
	}
	target, err := os.Readlink(link)
	if err != nil {
		return fmt.Sprintf("link %s cannot be read: %v", name, err)
	}
	id := filepath.Base(target)
	if filepath.Dir(target) != releasesDir || !idRE.MatchString(id) {
		return fmt.Sprintf("%s points at %s, outside %s/", name, target, releasesDir) + fix
	}
	dir := filepath.Join(r.root(), id)
	fi, err = os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s points at %s, which does not exist", name, target) + fix
	case err != nil:
		return fmt.Sprintf("%s points at %s, which cannot be read: %v", name, target, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		to, _ := os.Readlink(dir)
		return fmt.Sprintf("%s points at %s, a symlink to %s, outside %s/", name, target, to, releasesDir) + fix
	case !fi.IsDir():
		return fmt.Sprintf("%s points at %s, which is no directory", name, target) + fix
	}
	rel, err := r.load(id)
	if err != nil {
		return fmt.Sprintf("%s points at %s, which is not a whole release: %v", name, target, err) + fix
	}
	if fi, err := os.Lstat(rel.Artifact); err != nil || !fi.Mode().IsRegular() {
		return fmt.Sprintf("%s release %s has no artifact file of its own (%s)", name, id, rel.Artifact) + fix
	}
	return ""
}

func modeName(m fs.FileMode) string {
	if m.IsDir() {
		return "directory"
	}
	if m.IsRegular() {
		return "file"
	}
	return m.Type().String()
}

// Current returns the current release; ok is false if there is none.
func (r *Releases) Current() (Release, bool, error) { return r.linked(currentLink) }

// Previous returns the release a rollback returns to; ok is false if there
// is none.
func (r *Releases) Previous() (Release, bool, error) { return r.linked(previousLink) }

// List returns every release kept, oldest first: the releases a status
// shows and an install prunes.
func (r *Releases) List() ([]Release, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, err := r.ids()
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	out := make([]Release, 0, len(ids))
	for _, id := range ids {
		rel, err := r.load(id)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		out = append(out, rel)
	}
	return out, nil
}

// ids returns the ids of every release, oldest first.
func (r *Releases) ids() ([]string, error) {
	entries, err := os.ReadDir(r.root())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && idRE.MatchString(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Activate makes release id current. The release that was current, if
// any and different, becomes previous.
func (r *Releases) Activate(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.load(id); err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	cur, ok, err := r.readLink(currentLink)
	if err != nil {
		return fmt.Errorf("activate release %s: %w", id, err)
	}
	// previous first: a crash in between leaves current as it was.
	if ok && cur != id && r.exists(cur) {
		if err := r.setLink(previousLink, cur); err != nil {
			return fmt.Errorf("activate release %s: %w", id, err)
		}
	}
	if err := r.setLink(currentLink, id); err != nil {
		return fmt.Errorf("activate release %s: %w", id, err)
	}
	return nil
}

// Rollback makes the previous release current and returns it. The new
// previous is the release staged before it, or none. The error wraps
// ErrNoPrevious if there is no previous release.
func (r *Releases) Rollback() (Release, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, ok, err := r.readLink(previousLink)
	if err != nil {
		return Release{}, fmt.Errorf("roll back: %w", err)
	}
	if !ok {
		return Release{}, fmt.Errorf("roll back: %w", ErrNoPrevious)
	}
	rel, err := r.load(prev)
	if err != nil {
		return Release{}, fmt.Errorf("roll back: previous %w", err)
	}
	before, err := r.before(prev)
	if err != nil {
		return Release{}, fmt.Errorf("roll back to %s: %w", prev, err)
	}
	// current first: a crash in between leaves current = previous, which a
	// retry of the rollback keeps.
	if err := r.setLink(currentLink, prev); err != nil {
		return Release{}, fmt.Errorf("roll back to %s: %w", prev, err)
	}
	if err := r.setLink(previousLink, before); err != nil {
		return Release{}, fmt.Errorf("roll back to %s: %w", prev, err)
	}
	return rel, nil
}

// Set points current and previous at the given releases exactly; "" means
// no link. The agent switches with it once it has recorded the switch's
// Intent, and undoes a switch with it (Undo, Recover).
func (r *Releases) Set(current, previous string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range []string{current, previous} {
		if id == "" {
			continue
		}
		if _, err := r.load(id); err != nil {
			return fmt.Errorf("set releases (current %q, previous %q): %w", current, previous, err)
		}
	}
	if err := r.setLink(currentLink, current); err != nil {
		return fmt.Errorf("set releases (current %q, previous %q): %w", current, previous, err)
	}
	if err := r.setLink(previousLink, previous); err != nil {
		return fmt.Errorf("set releases (current %q, previous %q): %w", current, previous, err)
	}
	return nil
}

// Prune deletes the oldest releases beyond the newest keep (keep is at
// least 2), never the current or previous one, and returns the ids it
// removed, oldest first.
func (r *Releases) Prune(keep int) ([]string, error) {
	keep = max(keep, 2)
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, err := r.ids()
	if err != nil {
		return nil, fmt.Errorf("prune releases: %w", err)
	}
	protected := map[string]bool{}
	for _, name := range []string{currentLink, previousLink} {
		id, ok, err := r.readLink(name)
		if err != nil {
			return nil, fmt.Errorf("prune releases: %w", err) // cannot tell what is in use
		}
		if ok {
			protected[id] = true
		}
	}
	// The releases of a switch that has not ended: recovery may go back
	// to them.
	in, ok, err := r.pending()
	if err != nil {
		return nil, fmt.Errorf("prune releases: %w", err)
	}
	if ok {
		for _, id := range []string{in.Current, in.Previous, in.FromCurrent, in.FromPrevious} {
			protected[id] = true
		}
	}
	var removed []string
	excess := len(ids) - keep
	for _, id := range ids {
		if excess <= 0 {
			break
		}
		if protected[id] {
			continue
		}
		// Rename first: a crash while deleting leaves a .trash- directory
		// that Open removes, never a release with half its files.
		trash := filepath.Join(r.root(), trashPrefix+id)
		if err := os.Rename(filepath.Join(r.root(), id), trash); err != nil {
			return removed, fmt.Errorf("prune release %s: %w", id, err)
		}
		removed = append(removed, id)
		excess--
		if err := os.RemoveAll(trash); err != nil {
			return removed, fmt.Errorf("prune release %s: %w", id, err)
		}
	}
	if len(removed) > 0 {
		if err := proc.SyncDir(r.root()); err != nil {
			return removed, fmt.Errorf("prune releases: sync %s: %w", r.root(), err)
		}
	}
	return removed, nil
}

func (r *Releases) exists(id string) bool {
	_, err := os.Stat(filepath.Join(r.root(), id, metaFile))
	return err == nil
}

// setLink points link name at releases/id ("": removes it) by renaming a
// new symlink over the old one, then syncs the directory.
func (r *Releases) setLink(name, id string) error {
	link := filepath.Join(r.dir, name)
	if id == "" {
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove link %s: %w", name, err)
		}
		if err := proc.SyncDir(r.dir); err != nil {
			return fmt.Errorf("remove link %s: sync %s: %w", name, r.dir, err)
		}
		return nil
	}
	tmp := filepath.Join(r.dir, fmt.Sprintf("%s%s-%d", linkTmpPrefix, name, time.Now().UnixNano()))
	if err := os.Symlink(path.Join(releasesDir, id), tmp); err != nil {
		return fmt.Errorf("point link %s at %s: %w", name, id, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("point link %s at %s: %w", name, id, err)
	}
	if err := proc.SyncDir(r.dir); err != nil {
		return fmt.Errorf("point link %s at %s: sync %s: %w", name, id, r.dir, err)
	}
	return nil
}

func validDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// copyFile copies src to a new file dst and syncs it.
func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(dst)
		}
	}()
	if _, err = io.Copy(out, in); err != nil {
		return err
	}
	if err = out.Sync(); err != nil {
		return err
	}
	return out.Close()
}
