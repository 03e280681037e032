"""Training the "nano" Kandinsky 2.2 on the shapes world (kandinsky_lab/world.py). Run `python -m training.train`."""
