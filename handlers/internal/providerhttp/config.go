package providerhttp

import (
	"fmt"
	"net/http"
	"net/url"
)

// ParseBaseURL checks a configured provider base URL: absolute http(s),
// with no query or fragment that request paths would be appended after.
func ParseBaseURL(provider, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: base URL %q must be an absolute http(s) URL", provider, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%s: base URL %q must not have a query or fragment", provider, raw)
	}
	return u, nil
}

// PooledTransport is the transport of a client built without an
// http.Client: the default one, with more idle connections per provider host.
func PooledTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return t
}
