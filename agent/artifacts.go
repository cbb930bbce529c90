package agent

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/agent/artifact"
)

// HasArtifact reports whether the store holds the artifact of digest, and
// its size.
func (a *Agent) HasArtifact(digest string) (size int64, ok bool, err error) {
	if !artifact.ValidDigest(digest) {
		return 0, false, badDigest(digest)
	}
	return a.store.Has(digest)
}

// PutArtifact stores the artifact of digest from body, whose length is size
// (-1 when unknown). The bytes must hash to digest and be a zip (WAR, JAR):
// anything else is refused with an *api.Error and leaves no trace.
func (a *Agent) PutArtifact(ctx context.Context, digest string, body io.Reader, size int64) (int64, error) {
	if !artifact.ValidDigest(digest) {
		return 0, badDigest(digest)
	}
	limit := int64(a.cfg.MaxArtifact)
	if size > limit {
		return 0, api.Errorf(api.CodeTooLarge, "artifact of %d bytes is over max_artifact_size (%d bytes)", size, limit)
	}
	n, err := a.store.Put(ctx, digest, body, limit)
	switch {
	case errors.Is(err, artifact.ErrTooLarge):
		return 0, api.Errorf(api.CodeTooLarge, "artifact is over max_artifact_size (%d bytes)", limit)
	case errors.Is(err, artifact.ErrDigestMismatch), errors.Is(err, artifact.ErrNotZip):
		return 0, api.Errorf(api.CodeBadArtifact, "%v", err)
	case err != nil:
		return 0, fmt.Errorf("store artifact %s: %w", digest, err)
	}
	a.metrics.uploadBytes.Add(float64(n))
	a.log.Info("artifact stored", "sha256", digest, "bytes", n)
	return n, nil
}

func badDigest(digest string) error {
	return api.Errorf(api.CodeBadRequest, "bad digest %q: want 64 lower-case hex characters of the artifact's sha256", digest)
}
