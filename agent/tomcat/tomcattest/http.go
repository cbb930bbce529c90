package tomcattest

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// client does not keep connections: the Tomcat behind a port comes and goes
// between requests.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// Get fetches url and returns the status code and body.
func Get(ctx context.Context, url string) (status int, body string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, string(b), fmt.Errorf("GET %s: read body: %w", url, err)
	}
	return resp.StatusCode, string(b), nil
}
