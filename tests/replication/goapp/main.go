// The Go application of the replication test (tests/replication/README.md): writes numbered
// rows through litepool's native API, one autocommit INSERT per commit, and appends
// "seq time_ns" to the ack log after each commit returned. Runs until killed.
//
//	goapp DB ACKS CHECKPOINT_MODE PAYLOAD_BYTES PAUSE_SECONDS
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"net/url"
	"os"
	"strconv"
	"time"

	litepool "github.com/litepool/litepool/go"
)

func main() {
	if len(os.Args) != 6 {
		log.Fatal("usage: goapp DB ACKS CHECKPOINT_MODE PAYLOAD_BYTES PAUSE_SECONDS")
	}
	db, acks, mode := os.Args[1], os.Args[2], os.Args[3]
	size, err := strconv.Atoi(os.Args[4])
	if err != nil {
		log.Fatal(err)
	}
	pause, err := strconv.ParseFloat(os.Args[5], 64)
	if err != nil {
		log.Fatal(err)
	}
	pool, err := litepool.Open("file:" + db + "?checkpoint=" + url.QueryEscape(mode))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS acked(seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)"); err != nil {
		log.Fatal(err)
	}
	var seq int64
	if err := pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM acked", nil, &seq); err != nil {
		log.Fatal(err)
	}
	f, err := os.OpenFile(acks, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("app: writing from seq %d\n", seq+1)
	payload := make([]byte, size)
	for {
		seq++
		fill(payload, seq)
		for {
			_, err := pool.Exec(ctx, "INSERT INTO acked VALUES (?, ?)", seq, payload)
			if err == nil {
				break
			}
			if !errors.Is(err, litepool.ErrBusy) {
				log.Fatalf("seq %d: %v", seq, err)
			}
			// "database is locked" while Litestream checkpoints: not committed, retried.
			fmt.Printf("app: seq %d: %v; retrying\n", seq, err)
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := fmt.Fprintf(f, "%d %d\n", seq, time.Now().UnixNano()); err != nil {
			log.Fatal(err)
		}
		time.Sleep(time.Duration(pause * float64(time.Second)))
	}
}

// fill sets the row's payload, a function of its number, so a restored copy checks itself: the
// SHA-256 of the decimal number, repeated (tests/replication/app.py computes the same).
func fill(payload []byte, seq int64) {
	digest := sha256.Sum256([]byte(strconv.FormatInt(seq, 10)))
	for i := range payload {
		payload[i] = digest[i%len(digest)]
	}
}
