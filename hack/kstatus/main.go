// Command kstatus prints what the kstatus library (sigs.k8s.io/cli-utils/pkg/kstatus/status) makes
// of one Kubernetes object: the status Flux's health checks, `kpt live status` and cli-utils'
// appliers read. Tests feed it live ModelVersion objects (`kubectl get -o json`), so the status the
// operator writes is judged by the real library, not by a re-implementation of its rules.
//
//	kstatus [FILE]        read the object as JSON from FILE, or from stdin when FILE is absent or -
//
// Output, one JSON line: {"status": "Current|InProgress|Failed|Terminating|NotFound|Unknown",
// "message": "..."}. Exit 0 whatever the status; 2 when the input is not an object.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	in := stdin
	if len(args) > 1 {
		return fmt.Errorf("usage: kstatus [FILE]")
	}
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	// apimachinery's decoder, as client-go's: whole numbers become int64 (metadata.generation
	// must, or kstatus cannot compare it with status.observedGeneration).
	obj := map[string]any{}
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(result{Status: res.Status.String(), Message: res.Message})
}
