package codec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evbus/evbus/codec"
)

// order builds a record schema named com.example.Order from field JSON.
func order(fields ...string) string {
	return `{"type":"record","name":"Order","namespace":"com.example","fields":[` + strings.Join(fields, ",") + `]}`
}

const (
	fID       = `{"name":"id","type":"string"}`
	fQtyInt   = `{"name":"qty","type":"int"}`
	fQtyLong  = `{"name":"qty","type":"long"}`
	fNoteDef  = `{"name":"note","type":"string","default":""}`
	fNote     = `{"name":"note","type":"string"}`
	fCustomer = `{"name":"customer","type":{"type":"record","name":"Customer","fields":[
	  {"name":"id","type":"string"},
	  {"name":"address","type":{"type":"record","name":"Address","fields":[%s]}}]}}`
	fLines = `{"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
	  {"name":"sku","type":"string"},%s]}}}`
	fPrices = `{"name":"prices","type":{"type":"map","values":{"type":"record","name":"Price","fields":[%s]}}}`
)

func customer(addressFields string) string { return strings.Replace(fCustomer, "%s", addressFields, 1) }
func lines(qty string) string              { return strings.Replace(fLines, "%s", qty, 1) }
func prices(f string) string               { return strings.Replace(fPrices, "%s", f, 1) }

func enumField(symbols string, def string) string {
	d := ""
	if def != "" {
		d = `,"default":"` + def + `"`
	}
	return `{"name":"status","type":{"type":"enum","name":"Status","symbols":[` + symbols + `]` + d + `}}`
}

func TestCompatible(t *testing.T) {
	zip := `{"name":"street","type":"string"},{"name":"zip","type":"string"}`
	cases := []struct {
		name           string
		reader, writer string
		path           string // "" and ok: compatible
		ok             bool
	}{
		// Compatible changes.
		{"identical", order(fID, fQtyInt), order(fID, fQtyInt), "", true},
		{"reader adds a field with a default", order(fID, fNoteDef), order(fID), "", true},
		{"reader drops a field", order(fID), order(fID, fQtyInt, fNote), "", true},
		{"int widens to long", order(fQtyLong), order(fQtyInt), "", true},
		{"int widens to double", order(`{"name":"qty","type":"double"}`), order(fQtyInt), "", true},
		{"long widens to float", order(`{"name":"qty","type":"float"}`), order(fQtyLong), "", true},
		{"float widens to double", order(`{"name":"w","type":"double"}`), order(`{"name":"w","type":"float"}`), "", true},
		{"string reads bytes", order(`{"name":"b","type":"string"}`), order(`{"name":"b","type":"bytes"}`), "", true},
		{"bytes reads string", order(`{"name":"b","type":"bytes"}`), order(`{"name":"b","type":"string"}`), "", true},
		{"renamed with an alias", order(`{"name":"order_id","type":"string","aliases":["id"]}`), order(fID), "", true},
		{"enum gains a symbol", order(enumField(`"A","B","C"`, "")), order(enumField(`"A","B"`, "")), "", true},
		{"enum loses a symbol, reader has a default", order(enumField(`"A","B"`, "A")), order(enumField(`"A","B","C"`, "")), "", true},
		{"field becomes nullable", order(`{"name":"id","type":["null","string"],"default":null}`), order(fID), "", true},
		{"union gains a branch", order(`{"name":"v","type":["null","string","long"]}`), order(`{"name":"v","type":["null","string"]}`), "", true},
		{"nested record gains a defaulted field", order(customer(zip + `,{"name":"city","type":"string","default":""}`)), order(customer(zip)), "", true},
		{"array items widen", order(lines(fQtyLong)), order(lines(fQtyInt)), "", true},
		{"map values widen", order(prices(`{"name":"amount","type":"double"}`)), order(prices(`{"name":"amount","type":"float"}`)), "", true},
		{"record renamed with an alias", `{"type":"record","name":"Order2","namespace":"com.example","aliases":["Order"],"fields":[` + fID + `]}`, order(fID), "", true},
		{"logical type on the same primitive", order(`{"name":"at","type":{"type":"long","logicalType":"timestamp-micros"}}`), order(`{"name":"at","type":"long"}`), "", true},

		// Incompatible changes, and where they are.
		{"reader needs a field the writer lacks", order(fID, fNote), order(fID), "note", false},
		{"long narrows to int", order(fQtyInt), order(fQtyLong), "qty", false},
		{"string to int", order(`{"name":"id","type":"int"}`), order(fID), "id", false},
		{"nested field missing", order(fID, customer(zip)), order(fID, customer(`{"name":"street","type":"string"}`)), "customer.address.zip", false},
		{"nested field retyped", order(customer(`{"name":"zip","type":"int"}`)), order(customer(zip)), "customer.address.zip", false},
		{"array item field narrows", order(lines(fQtyInt)), order(lines(fQtyLong)), "lines[].qty", false},
		{"array item field missing", order(lines(fNote)), order(lines(fQtyInt)), "lines[].note", false},
		{"map value field narrows", order(prices(`{"name":"amount","type":"float"}`)), order(prices(`{"name":"amount","type":"double"}`)), "prices{}.amount", false},
		{"enum symbol unknown to the reader", order(enumField(`"A","B"`, "")), order(enumField(`"A","B","C"`, "")), "status", false},
		{"nullable to required", order(fID), order(`{"name":"id","type":["null","string"],"default":null}`), "id", false},
		{"union loses a branch", order(`{"name":"v","type":["null","string"]}`), order(`{"name":"v","type":["null","string","long"]}`), "v", false},
		{"fixed changes size", order(`{"name":"h","type":{"type":"fixed","name":"H","size":16}}`), order(`{"name":"h","type":{"type":"fixed","name":"H","size":32}}`), "h", false},
		{"record renamed", `{"type":"record","name":"Other","namespace":"com.example","fields":[` + fID + `]}`, order(fID), "", false},
		{"array to map", order(`{"name":"a","type":{"type":"array","items":"string"}}`), order(`{"name":"a","type":{"type":"map","values":"string"}}`), "a", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, w := mustParse(t, tc.reader), mustParse(t, tc.writer)
			err := codec.Compatible(r, w)
			if tc.ok {
				if err != nil {
					t.Fatalf("Compatible: %v, want nil", err)
				}
				return
			}
			var ie *codec.IncompatibleError
			if !errors.Is(err, codec.ErrIncompatible) || !errors.As(err, &ie) {
				t.Fatalf("Compatible: %v, want an *IncompatibleError", err)
			}
			if ie.Path != tc.path {
				t.Errorf("Path %q, want %q (%v)", ie.Path, tc.path, err)
			}
			if ie.Reason == "" {
				t.Errorf("no Reason")
			}
			if tc.path != "" && !strings.Contains(err.Error(), "field "+tc.path) {
				t.Errorf("message %q does not name field %s", err, tc.path)
			}
		})
	}
}

// Compatibility is directional: the pairs above reversed.
func TestCompatibleIsDirectional(t *testing.T) {
	v1, v2 := mustParse(t, order(fID, fQtyInt)), mustParse(t, order(fID, fQtyLong, fNoteDef))
	if err := codec.Compatible(v2, v1); err != nil {
		t.Errorf("v2 reading v1: %v", err)
	}
	if err := codec.Compatible(v1, v2); !errors.Is(err, codec.ErrIncompatible) {
		t.Errorf("v1 reading v2: %v, want ErrIncompatible", err)
	}
	if err := codec.Compatible(nil, v1); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Errorf("nil reader: %v, want ErrInvalidSchema", err)
	}
	if err := codec.Compatible(v1, nil); !errors.Is(err, codec.ErrInvalidSchema) {
		t.Errorf("nil writer: %v, want ErrInvalidSchema", err)
	}
}
