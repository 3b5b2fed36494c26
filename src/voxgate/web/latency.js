// Per-turn latency as the page hears it: from the moment the user stopped speaking (the last loud
// microphone chunk before the server's `input.speech.stopped`) to the moment the first sample of the
// agent's answer is scheduled to play.

const VOICE_RMS = 0.02; // about -34 dBFS
const MAX_STOP_LOOKBACK_MS = 10000;

export class TurnLatency {
  constructor() {
    this.samples = [];
    this.lastVoiceAt = 0;
    this.stoppedAt = null;
  }

  micChunk(rms, at = performance.now()) {
    if (rms >= VOICE_RMS) this.lastVoiceAt = at;
  }

  userStopped(at = performance.now()) {
    const recent = this.lastVoiceAt && at - this.lastVoiceAt < MAX_STOP_LOOKBACK_MS;
    this.stoppedAt = recent ? this.lastVoiceAt : at;
  }

  userStarted() {
    this.stoppedAt = null;
  }

  /** The first audio of a reply will play at `playAt`; returns the turn's latency in ms, or null when
   * this reply does not answer a user turn (a greeting, a tool follow-up). */
  firstAudio(playAt) {
    if (this.stoppedAt === null) return null;
    const ms = Math.max(0, playAt - this.stoppedAt);
    this.stoppedAt = null;
    this.samples.push(ms);
    return ms;
  }

  percentile(p) {
    if (this.samples.length === 0) return null;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
    return sorted[rank];
  }
}
