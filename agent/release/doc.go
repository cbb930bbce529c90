// Package release keeps the releases of one instance. It owns the layout of
// an instance's directory (data_dir/instances/<service>/<instance>):
//
//	releases/<id>/<artifact>   the artifact, hard-linked from the store (or copied)
//	releases/<id>/meta.json    digest, original name, time, build, user
//	current  -> releases/<id>  the release the instance runs
//	previous -> releases/<id>  the release a rollback returns to
//
// Ids sort by the time a release was staged. Every change is crash-safe: a
// release is staged in a hidden directory and renamed into place; a link is
// switched by renaming a new symlink over the old one and syncing the
// directory, so a crash leaves the old link or the new one, never none;
// Open cleans what a crash left half-done.
//
// It must not know the artifact store (it is handed a file path), drivers,
// HTTP or locks: the agent serialises steps on an instance; a Releases is
// still safe for concurrent use within one process.
package release
