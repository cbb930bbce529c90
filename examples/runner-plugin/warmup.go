package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/baepo/baepo/sdk"
)

// warmUp sends GET requests to the instance, so that its first real
// requests do not pay for class loading and cold caches. args: path (the
// context path by default) and count (10 by default). A request fails on
// an error or a 5xx status; the step fails when all of them do.
func warmUp(ctx context.Context, inst sdk.Instance, args map[string]string) (sdk.Result, error) {
	path := cmp.Or(args["path"], inst.Context, "/")
	if !strings.HasPrefix(path, "/") {
		return sdk.Result{}, fmt.Errorf("path: %q: want a path that begins with /", path)
	}
	count := 10
	if s, ok := args["count"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return sdk.Result{}, fmt.Errorf("count: %q: want a positive whole number", s)
		}
		count = n
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", inst.Port, path)
	failed := 0
	var last error
	for i := range count {
		if err := get(ctx, url); err != nil {
			if ctx.Err() != nil {
				return sdk.Result{}, fmt.Errorf("warm-up %s: %w", url, ctx.Err())
			}
			failed, last = failed+1, err
			sdk.Progress(ctx, fmt.Sprintf("GET %s (%d of %d): %v", url, i+1, count, err))
		}
	}
	if failed == count {
		return sdk.Result{}, fmt.Errorf("warm-up: all %d requests to %s failed; the last: %w", count, url, last)
	}
	return sdk.Result{
		Message: fmt.Sprintf("warmed up %s: %d of %d requests ok", url, count-failed, count),
		Output:  map[string]string{"ok": strconv.Itoa(count - failed), "failed": strconv.Itoa(failed)},
	}, nil
}

// get sends one GET and reads the whole answer; a 5xx status is an error.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode >= 500 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}
