"""The Learn pages' numbers: tensors, the model layer by layer, autograd, one optimization step."""
