"""Language-model papers (Kaplan, Chinchilla, Megatron-LM, Korthikanti, PaLM)."""
