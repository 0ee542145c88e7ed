// Package smoke runs disputesync's container image end to end: NATS, Redis,
// the sandbox (as the providers) and "disputesync run" with the poller,
// worker and webhook roles, each a container on one Docker network. A
// command published from the test must get its succeeded result, the
// sandbox must have applied it once, the poller must publish an event for
// the dispute, and a notification the sandbox pushes must come out as a
// dispute.notified event.
//
// It needs a Docker engine and is built only with the dockersmoke tag:
//
//	eval "$(scripts/docker-engine start)"
//	go test -tags dockersmoke -count=1 -v ./deploy/docker/smoke
//	scripts/docker-engine stop
//
// Images: DISPUTESYNC_TEST_IMAGE (default disputesync:dev, which
// scripts/docker-engine builds), and testenv's NATS and Redis images
// (DISPUTESYNC_TEST_NATS_IMAGE, DISPUTESYNC_TEST_REDIS_IMAGE). Without an
// engine the test fails; it is never skipped.
package smoke
