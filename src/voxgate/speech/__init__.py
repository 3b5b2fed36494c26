"""Speech providers: voice activity detection, speech-to-text, end-of-turn, LLM and text-to-speech."""
