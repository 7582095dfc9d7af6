"""Patches to faust's internals (redelivery, batched table recovery), kept together in one place."""
