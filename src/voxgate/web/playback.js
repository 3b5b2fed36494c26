// Agent speech playback through a small jitter buffer: each `reply.audio` chunk (24 kHz PCM16) becomes
// an AudioBuffer scheduled right after the previous one. The first chunk after silence (or after an
// underrun) starts `jitterSeconds` in the future so network jitter does not cause gaps; `flush()` stops
// everything at once (barge-in). Counters are public for the page's stats and for tests.

export const PLAYBACK_RATE = 24000;

export class PlaybackQueue {
  /** @param {AudioContext} context */
  constructor(context, { jitterSeconds = 0.08 } = {}) {
    this.context = context;
    this.jitterSeconds = jitterSeconds;
    this.output = context.createGain();
    this.output.connect(context.destination);
    this.nextStart = 0;
    this.sources = new Set();
    this.stats = {
      chunks: 0,
      samplesScheduled: 0,
      samplesFlushed: 0,
      flushes: 0,
      underruns: 0,
    };
  }

  /** Schedule one chunk of little-endian PCM16. Returns the wall-clock time (performance.now() ms) at
   * which its first sample will be heard. */
  enqueue(pcmBytes) {
    const view = new DataView(pcmBytes.buffer, pcmBytes.byteOffset, pcmBytes.byteLength);
    const frames = Math.floor(pcmBytes.byteLength / 2);
    if (frames === 0) return performance.now();
    const buffer = this.context.createBuffer(1, frames, PLAYBACK_RATE);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < frames; i++) samples[i] = view.getInt16(i * 2, true) / 32768;

    const now = this.context.currentTime;
    if (this.nextStart < now) {
      if (this.nextStart > 0) this.stats.underruns += 1; // the reply's audio ran dry mid-reply
      this.nextStart = now + this.jitterSeconds;
    }
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    const startAt = this.nextStart;
    source.start(startAt);
    source.onended = () => this.sources.delete(source);
    this.sources.add(source);
    source.voxgateStart = startAt;
    this.nextStart = startAt + buffer.duration;
    this.stats.chunks += 1;
    this.stats.samplesScheduled += frames;
    return performance.now() + (startAt - now) * 1000;
  }

  /** A new reply begins: a gap before its first chunk is silence between replies, not an underrun. */
  startReply() {
    if (this.nextStart < this.context.currentTime) this.nextStart = 0;
  }

  /** Seconds of scheduled audio not yet played. */
  get bufferedSeconds() {
    return Math.max(0, this.nextStart - this.context.currentTime);
  }

  /** Seconds of agent audio actually played so far (scheduled minus flushed minus still queued). */
  get playedSeconds() {
    const played = this.stats.samplesScheduled - this.stats.samplesFlushed;
    return Math.max(0, played / PLAYBACK_RATE - this.bufferedSeconds);
  }

  /** Stop all queued audio now. Returns how many samples were dropped. */
  flush() {
    const now = this.context.currentTime;
    let dropped = 0;
    for (const source of this.sources) {
      const start = source.voxgateStart;
      const end = start + source.buffer.duration;
      if (end > now) dropped += Math.round((end - Math.max(start, now)) * PLAYBACK_RATE);
      source.onended = null;
      try {
        source.stop();
      } catch {
        // already stopped
      }
      source.disconnect();
    }
    this.sources.clear();
    this.nextStart = 0;
    this.stats.flushes += 1;
    this.stats.samplesFlushed += dropped;
    return dropped;
  }

  close() {
    this.flush();
    this.output.disconnect();
  }
}
