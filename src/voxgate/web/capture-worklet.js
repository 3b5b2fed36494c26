// AudioWorklet processor: microphone frames (any context rate, any channel count) -> mono PCM16 at
// `targetRate` in chunks of `chunkMs`, posted to the main thread as little-endian ArrayBuffers with the
// chunk's RMS level. Resampling is linear interpolation; the graph puts a low-pass filter in front of
// this node, so downsampling does not alias.
class PcmCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const settings = options.processorOptions || {};
    this.targetRate = settings.targetRate || 24000;
    this.chunkSamples = Math.round((this.targetRate * (settings.chunkMs || 50)) / 1000);
    this.step = sampleRate / this.targetRate; // input samples per output sample
    this.position = 0; // input index of the next output sample, relative to the current block
    this.previous = 0; // last input sample of the previous block (index -1)
    this.chunk = new DataView(new ArrayBuffer(this.chunkSamples * 2));
    this.filled = 0;
    this.sumSquares = 0;
    this.stopped = false;
    this.port.onmessage = (event) => {
      if (event.data === "stop") this.stopped = true;
    };
  }

  process(inputs) {
    if (this.stopped) return false;
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    const mono = channels.length === 1 ? channels[0] : this.mix(channels, frames);
    let t = this.position;
    for (;;) {
      const index = Math.floor(t);
      if (index + 1 >= frames) break;
      const a = index < 0 ? this.previous : mono[index];
      const b = mono[index + 1];
      this.emit(a + (b - a) * (t - index));
      t += this.step;
    }
    this.position = t - frames;
    this.previous = mono[frames - 1];
    return true;
  }

  mix(channels, frames) {
    const out = new Float32Array(frames);
    for (const channel of channels) for (let i = 0; i < frames; i++) out[i] += channel[i];
    for (let i = 0; i < frames; i++) out[i] /= channels.length;
    return out;
  }

  emit(sample) {
    const clamped = sample > 1 ? 1 : sample < -1 ? -1 : sample;
    this.chunk.setInt16(this.filled * 2, Math.round(clamped * 32767), true);
    this.sumSquares += clamped * clamped;
    this.filled += 1;
    if (this.filled === this.chunkSamples) {
      const rms = Math.sqrt(this.sumSquares / this.chunkSamples);
      const buffer = this.chunk.buffer;
      this.port.postMessage({ pcm: buffer, rms }, [buffer]);
      this.chunk = new DataView(new ArrayBuffer(this.chunkSamples * 2));
      this.filled = 0;
      this.sumSquares = 0;
    }
  }
}

registerProcessor("pcm-capture", PcmCaptureProcessor);
