// Package signingtest holds no code: its test drives the real handlers'
// signing code (handlers/alipay, handlers/alipayplus, handlers/ingenico)
// against the sandbox and proves that a wrong key, a changed body or header
// and a stale timestamp are each refused, with nothing applied. It lives in
// its own package so that the sandbox's own tests never depend on the
// handlers compiling.
package signingtest
