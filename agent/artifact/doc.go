// Package artifact is the agent's content-addressed artifact store. It owns
// the directory data_dir/artifacts: every WAR or JAR the agent receives,
// uploaded (Put) or downloaded from a repository such as Nexus or
// Artifactory (Fetch), is kept once as sha256/<digest>, however many
// instances and releases use it. It verifies what it keeps — the size limit,
// the digest and the zip structure — before anything becomes visible, and
// writes crash-safely: temp file, fsync, rename, fsync of the directory.
//
// It must not know services, instances, releases, drivers or the agent's
// HTTP API: callers map its sentinel errors (ErrNotFound, ErrTooLarge,
// ErrDigestMismatch, ErrNotZip) to their own codes.
package artifact
