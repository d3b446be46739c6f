// The README's readiness probe: a function at the top level of a service.
package service

import (
	"fmt"
	"net/http"

	"github.com/evbus/evbus/consumer"
	"github.com/evbus/evbus/outbox"
)

//doccheck:fragment

// The probe takes what a service has: consumers and outbox relays.
var _ = func(c *consumer.Consumer, r *outbox.Relay) { serveReadiness(c, r) }
