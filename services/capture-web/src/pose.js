// Head yaw and pitch from five landmarks, the Python agent's head_pose()
// (services/capture/classroom_capture/detector.py) line for line: a weak-perspective model, +-10 deg.
// Landmarks: right eye, left eye, nose tip, right mouth corner, left mouth corner ("right" = the
// person's right = image left). yaw > 0: turned towards the image's right; pitch > 0: tilted up.

const NOSE_DEPTH_PER_EYE_GAP = 0.55;
const EYE_MOUTH_PER_NOSE_DEPTH = 2.0;

const round1 = (v) => Math.round(v * 10) / 10;
const clamp90 = (v) => Math.max(-90, Math.min(90, v));
const deg = (rad) => (rad * 180) / Math.PI;

export function headPose(landmarks, neutralNoseHeight) {
  const [rightEye, leftEye, nose, mouthR, mouthL] = landmarks;
  const eyesMid = [(rightEye[0] + leftEye[0]) / 2, (rightEye[1] + leftEye[1]) / 2];
  const mouthMid = [(mouthR[0] + mouthL[0]) / 2, (mouthR[1] + mouthL[1]) / 2];
  const eyeGap = Math.hypot(leftEye[0] - rightEye[0], leftEye[1] - rightEye[1]);
  if (eyeGap < 1e-3) return [0, 0];
  const axisX = [(leftEye[0] - rightEye[0]) / eyeGap, (leftEye[1] - rightEye[1]) / eyeGap];
  const axisY = [-axisX[1], axisX[0]];
  const noseOff = [nose[0] - eyesMid[0], nose[1] - eyesMid[1]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1];
  const yaw = deg(Math.atan(dot(noseOff, axisX) / eyeGap / NOSE_DEPTH_PER_EYE_GAP));
  const eyeMouth = dot([mouthMid[0] - eyesMid[0], mouthMid[1] - eyesMid[1]], axisY);
  if (eyeMouth < 1e-3) return [round1(yaw), 0];
  const height = dot(noseOff, axisY) / eyeMouth;
  const pitch = -deg(Math.atan((height - neutralNoseHeight) * EYE_MOUTH_PER_NOSE_DEPTH));
  return [round1(clamp90(yaw)), round1(clamp90(pitch))];
}
