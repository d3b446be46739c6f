// Package redact hides credentials in URLs that are about to appear in
// errors and logs: the schema registry's, the CLI's and the test kit's
// database URLs.
package redact

import "strings"

// URL returns raw with the user information of a scheme://user:pass@host
// URL replaced by ***; any other string is returned as it is.
func URL(raw string) string {
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		if scheme := strings.Index(raw, "://"); scheme >= 0 && scheme < at {
			return raw[:scheme+3] + "***@" + raw[at+1:]
		}
	}
	return raw
}
