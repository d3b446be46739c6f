package devstack_test

import (
	"context"
	"fmt"
	"log"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/evbus/evbus/devstack"
)

func ExampleStart() {
	ctx := context.Background()
	// In memory, on free loopback ports; add devstack.DataDir(".evbus")
	// to keep the state across restarts.
	stack, err := devstack.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stack.Close()

	reg, err := sr.NewClient(sr.URLs(stack.RegistryURL()))
	if err != nil {
		log.Fatal(err)
	}
	ss, err := reg.CreateSchema(ctx, "orders-com.example.OrderPlaced", sr.Schema{
		Schema: `{"type":"record","name":"OrderPlaced","namespace":"com.example","fields":[{"name":"id","type":"string"}]}`,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schema id", ss.ID, "version", ss.Version)

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Brokers()...), kgo.AllowAutoTopicCreation())
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("order-1"), Value: []byte("...")}).First()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("produced at offset", r.Offset)
	// Output:
	// schema id 1 version 1
	// produced at offset 0
}
