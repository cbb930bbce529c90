package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client is a typed client of one agent's API. Transport failures come back
// as they are (a *url.Error); an error status comes back as an *Error, with
// Code set from the agent's JSON body, or [CodeAuth] for a 401 without one.
type Client struct {
	Base  string       // the agent's URL, e.g. https://10.0.0.11:7701
	Token string       // the bearer token
	HTTP  *http.Client // nil means http.DefaultClient
}

// Agent calls GET [RouteAgent].
func (c *Client) Agent(ctx context.Context) (Agent, error) {
	var out Agent
	return out, c.getJSON(ctx, RouteAgent, &out)
}

// Services calls GET [RouteServices].
func (c *Client) Services(ctx context.Context) (Services, error) {
	var out Services
	return out, c.getJSON(ctx, RouteServices, &out)
}

// Instance calls GET [RouteInstance]: the status of one instance.
func (c *Client) Instance(ctx context.Context, service, instance string) (StepResult, error) {
	var out StepResult
	return out, c.getJSON(ctx, InstancePath(service, instance), &out)
}

// History calls GET [RouteHistory].
func (c *Client) History(ctx context.Context, q HistoryQuery) (History, error) {
	var out History
	return out, c.getJSON(ctx, HistoryPath(q), &out)
}

// Step calls POST [RouteStep] and follows the step's stream to its end:
// progress events go to onEvent, the result or the step's error (an *Error
// with [CodeStepFailed]) is returned.
func (c *Client) Step(ctx context.Context, service, instance, step string, req StepRequest, onEvent func(Event)) (StepResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return StepResult{}, fmt.Errorf("encode step request: %w", err)
	}
	resp, err := c.Do(ctx, http.MethodPost, StepPath(service, instance, step), bytes.NewReader(body), int64(len(body)), "application/json")
	if err != nil {
		return StepResult{}, err
	}
	defer resp.Body.Close()
	return ReadStep(resp.Body, onEvent)
}

// HasArtifact calls HEAD [RouteArtifact]: whether the agent has the
// artifact of digest.
func (c *Client) HasArtifact(ctx context.Context, digest string) (bool, error) {
	resp, err := c.Do(ctx, http.MethodHead, ArtifactPath(digest), nil, 0, "")
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, &Error{Code: CodeInternal, Message: "HEAD " + ArtifactPath(digest) + ": HTTP " + resp.Status}
}

// PutArtifact calls PUT [RouteArtifact] with size bytes of body.
func (c *Client) PutArtifact(ctx context.Context, digest string, body io.Reader, size int64) (Stored, error) {
	resp, err := c.Do(ctx, http.MethodPut, ArtifactPath(digest), body, size, "application/octet-stream")
	if err != nil {
		return Stored{}, err
	}
	defer resp.Body.Close()
	var out Stored
	return out, decode(resp, &out)
}

// ReleaseLease calls DELETE [RouteLease]: it ends run's lease on service.
func (c *Client) ReleaseLease(ctx context.Context, service, run string) (bool, error) {
	resp, err := c.Do(ctx, http.MethodDelete, LeasePath(service, run), nil, 0, "")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out Released
	return out.Released, decode(resp, &out)
}

// EndRun calls PUT [RouteRun]: it tells the agent how run ended.
func (c *Client) EndRun(ctx context.Context, run string, end RunEnd) (Run, error) {
	body, err := json.Marshal(end)
	if err != nil {
		return Run{}, fmt.Errorf("encode the end of run %s: %w", run, err)
	}
	resp, err := c.Do(ctx, http.MethodPut, RunPath(run), bytes.NewReader(body), int64(len(body)), "application/json")
	if err != nil {
		return Run{}, err
	}
	defer resp.Body.Close()
	var out Run
	return out, decode(resp, &out)
}

// Do sends one authenticated request to path and returns the response of a
// status below 400 (and of any HEAD); an error status becomes an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, size int64, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.Base, "/")+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("User-Agent", "baepo")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if body != nil {
		req.ContentLength = size
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 && (method != http.MethodHead || resp.StatusCode == http.StatusUnauthorized) {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	resp, err := c.Do(ctx, http.MethodGet, path, nil, 0, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decode(resp, v)
}

func decode(resp *http.Response, v any) error {
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// readError reads an error response: the agent's JSON *Error, or one made
// of the status and body when something else answered.
func readError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e Error
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		return &e
	}
	e = Error{Code: CodeInternal, Message: strings.TrimSpace("HTTP " + resp.Status + ": " + string(data))}
	if resp.StatusCode == http.StatusUnauthorized {
		e.Code = CodeAuth
	}
	return &e
}
