"""Training for the classroom emotion model: data, model, train, evaluate, export, in that order."""
