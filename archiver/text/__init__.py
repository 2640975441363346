"""Text for the index and for people: jieba-based tokenizer (words and terms), highlighting."""
