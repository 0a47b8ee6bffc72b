package imports_test

import (
	"context"
	"fmt"
	"time"

	"github.com/topk-charts/topk/imports"
)

func ExampleReadFile() {
	opts := imports.Options{User: "alice", Now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var last imports.Position
	rep, err := imports.ReadFile(context.Background(), "testdata/spotify-history.zip", opts, func(r imports.Record) error {
		last = r.Position // produce r.Listen; keep last to resume (Options.After)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range rep.Files {
		fmt.Printf("%s: %s%s read %d accepted %d skipped %v refused %v\n", f.File, f.Format, f.Ignored, f.Read, f.Accepted, f.Skipped, f.Refused)
	}
	fmt.Println("last:", last.File, last.Index)
	// Output:
	// Spotify Extended Streaming History/Streaming_History_Audio_2019-2021_0.json: spotify-extended-streaming-history read 23 accepted 12 skipped map[audiobook:1 no_track_metadata:1 podcast_episode:1 too_short:2] refused map[bad_ms_played:1 bad_record:2 bad_time:1 name_too_long:1 played_at_out_of_range:1]
	// Spotify Extended Streaming History/Streaming_History_Audio_2021-2023_1.json: spotify-extended-streaming-history read 3 accepted 2 skipped map[podcast_episode:1] refused map[]
	// Spotify Extended Streaming History/Streaming_History_Video_2019-2023.json: spotify-extended-streaming-history read 2 accepted 0 skipped map[no_track_metadata:1 podcast_episode:1] refused map[]
	// Spotify Extended Streaming History/ReadMeFirst_ExtendedStreamingHistory.pdf: a PDF document read 0 accepted 0 skipped map[] refused map[]
	// last: Spotify Extended Streaming History/Streaming_History_Audio_2021-2023_1.json 1
}
