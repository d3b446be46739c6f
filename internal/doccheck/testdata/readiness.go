// The README's readiness probe: a function at the top level of a service.
package service

import (
	"fmt"
	"net/http"

	"github.com/evbus/evbus/consumer"
)

//doccheck:fragment

// The probe takes what a service has.
var _ = func(c *consumer.Consumer) { serveReadiness(c) }
