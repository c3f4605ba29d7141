package sfu

import (
	"runtime"
	"sync"

	"github.com/sanke-edu/sanke/sfu/srtpout"
)

// fanoutShard is the fewest down tracks worth handing to another core: below it, waking a
// worker costs more than the writes it would take over.
const fanoutShard = 48

// fanout writes one layer's packets to its down tracks, spread over the cores: the receive
// loop takes the first shard itself and long-lived workers (at most GOMAXPROCS-1, started
// when a fan-out first needs them) take the others, each with its own send batch. The
// receive loop waits for them before it reads the next packet, so packet buffers are
// simply reused, packets of a layer never overtake each other, and a down track is only
// ever written by one goroutine per layer at a time. No goroutine is started per packet.
type fanout struct {
	batch   *srtpout.Batch // the receive loop's own shard
	workers []*fanoutWorker
	wg      sync.WaitGroup
	max     int // workers allowed
}

type fanoutJob struct {
	in  inPacket
	dts []*DownTrack
}

type fanoutWorker struct {
	jobs  chan fanoutJob
	batch *srtpout.Batch
}

func newFanout() *fanout {
	return &fanout{batch: srtpout.NewBatch(srtpout.DefaultBatchSize), max: runtime.GOMAXPROCS(0) - 1}
}

// write sends in to every down track in dts. Only the layer's receive loop calls it.
func (f *fanout) write(in *inPacket, dts []*DownTrack) {
	shards := min(len(dts)/fanoutShard, f.max+1)
	if shards <= 1 {
		in.batch = f.batch
		for _, d := range dts {
			d.writeRTP(in)
		}
		f.batch.Flush()
		return
	}
	size := (len(dts) + shards - 1) / shards
	f.wg.Add(shards - 1)
	for i := 1; i < shards; i++ {
		job := fanoutJob{in: *in, dts: dts[i*size : min((i+1)*size, len(dts))]}
		f.worker(i - 1).jobs <- job
	}
	in.batch = f.batch
	for _, d := range dts[:size] {
		d.writeRTP(in)
	}
	f.batch.Flush()
	f.wg.Wait()
}

// worker returns worker i, starting it on first use.
func (f *fanout) worker(i int) *fanoutWorker {
	for len(f.workers) <= i {
		w := &fanoutWorker{jobs: make(chan fanoutJob, 1), batch: srtpout.NewBatch(srtpout.DefaultBatchSize)}
		f.workers = append(f.workers, w)
		go f.run(w)
	}
	return f.workers[i]
}

func (f *fanout) run(w *fanoutWorker) {
	for job := range w.jobs {
		job.in.batch = w.batch
		for _, d := range job.dts {
			d.writeRTP(&job.in)
		}
		w.batch.Flush()
		f.wg.Done()
	}
}

// stop ends the workers. Only the receive loop calls it, after its last write.
func (f *fanout) stop() {
	for _, w := range f.workers {
		close(w.jobs)
	}
	f.workers = nil
}
